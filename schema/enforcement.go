package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// PeriodUsage is one project's usage of one metric over a period: the sum of its hourly values
// and the largest single hour (what a size metric is judged by).
type PeriodUsage struct {
	OrgID, ProjectID, Metric string
	Sum, Max                 uint64
}

// UsageSince returns every project's usage per metric in [from, to), in one query for the whole
// fleet. It reads usage_facts FINAL with the filter on the key column hour, which every version
// of a fact shares, so the result equals usage_hourly's; 18.16 does not push WHERE into views.
func UsageSince(ctx context.Context, conn driver.Conn, db string, from, to time.Time, fn func(PeriodUsage)) error {
	rows, err := usageSinceQuery(from, to).Select(ctx, conn, db)
	if err != nil {
		return fmt.Errorf("usage since %s: %w", from.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	for rows.Next() {
		var u PeriodUsage
		if err := rows.Scan(&u.ProjectID, &u.OrgID, &u.Metric, &u.Sum, &u.Max); err != nil {
			return fmt.Errorf("usage since: scan: %w", err)
		}
		fn(u)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("usage since: %w", err)
	}
	return nil
}

func usageSinceQuery(from, to time.Time) Query {
	return Query{Name: "enforcement.usage", Kind: KindSelect, Args: []any{UTC(from), UTC(to)}, SQL: `SELECT project_id, any(org_id), metric, sum(value), max(value)
FROM {db}.usage_facts FINAL
WHERE hour >= ? AND hour < ?
GROUP BY project_id, metric`}
}

// HourlyWatermark is how far one org's hourly collection is known complete.
type HourlyWatermark struct {
	OrgID, Endpoint string
	CoveredUntil    time.Time
}

// HourlyWatermarks returns the hourly watermark of every (org, endpoint).
func HourlyWatermarks(ctx context.Context, conn driver.Conn, db string) ([]HourlyWatermark, error) {
	rows, err := hourlyWatermarksQuery().Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("hourly watermarks: %w", err)
	}
	defer rows.Close()
	var out []HourlyWatermark
	for rows.Next() {
		var w HourlyWatermark
		if err := rows.Scan(&w.OrgID, &w.Endpoint, &w.CoveredUntil); err != nil {
			return nil, fmt.Errorf("hourly watermarks: scan: %w", err)
		}
		w.CoveredUntil = w.CoveredUntil.UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hourly watermarks: %w", err)
	}
	return out, nil
}

func hourlyWatermarksQuery() Query {
	return Query{Name: "enforcement.watermarks", Kind: KindSelect, SQL: `SELECT org_id, toString(endpoint), covered_until
FROM {db}.collection_watermarks FINAL
WHERE granularity = 'hourly'
ORDER BY org_id, endpoint`}
}

// EnforcementState is a row of enforcement_state: what enforcement last knew of a project.
type EnforcementState struct {
	ProjectID string
	// PeriodStart is the start of the plan period the row belongs to.
	PeriodStart time.Time
	Plan        string
	// Level is the worst level last seen: "ok", "warning" or "over".
	Level string
	// OverSince is when the project was first seen over a limit in this period (zero if not).
	OverSince time.Time
	// ReleasedPeriod is the period an operator released the project for (zero if none).
	ReleasedPeriod time.Time
	// Applied fingerprints the Neon settings last applied or observed equal to the target;
	// empty when Neon's state is unknown.
	Applied string
	// EndpointsPending is set while endpoint changes wait for the compute to be active (an
	// idle compute is never patched: that would wake it).
	EndpointsPending bool
	// ObservedAt is when Neon's state was last read (zero if never).
	ObservedAt time.Time
	UpdatedAt  time.Time
	// Version orders rows of a project: the highest wins.
	Version uint64
}

// EnforcementStates returns every project's state.
func EnforcementStates(ctx context.Context, conn driver.Conn, db string) (map[string]EnforcementState, error) {
	rows, err := enforcementStatesQuery().Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("enforcement states: %w", err)
	}
	defer rows.Close()
	out := map[string]EnforcementState{}
	for rows.Next() {
		var s EnforcementState
		var pending uint8
		if err := rows.Scan(&s.ProjectID, &s.PeriodStart, &s.Plan, &s.Level, &s.OverSince, &s.ReleasedPeriod, &s.Applied,
			&pending, &s.ObservedAt, &s.UpdatedAt, &s.Version); err != nil {
			return nil, fmt.Errorf("enforcement states: scan: %w", err)
		}
		s.EndpointsPending = pending != 0
		s.PeriodStart, s.OverSince, s.ReleasedPeriod = FromDB(s.PeriodStart), FromDB(s.OverSince), FromDB(s.ReleasedPeriod)
		s.ObservedAt, s.UpdatedAt = FromDB(s.ObservedAt), FromDB(s.UpdatedAt)
		out[s.ProjectID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("enforcement states: %w", err)
	}
	return out, nil
}

func enforcementStatesQuery() Query {
	return Query{Name: "enforcement.states", Kind: KindSelect, SQL: `SELECT project_id, period_start, plan, level, over_since, released_period, applied,
    endpoints_pending, observed_at, updated_at, version
FROM {db}.enforcement_state FINAL`}
}

// WriteEnforcementStates writes states in one batch; none writes nothing.
func WriteEnforcementStates(ctx context.Context, conn driver.Conn, db string, states []EnforcementState) error {
	for _, s := range states {
		if s.ProjectID == "" || s.Version == 0 {
			return fmt.Errorf("write enforcement states: project %q: need a project and a version", s.ProjectID)
		}
	}
	if err := writeEnforcementStatesQuery(states).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("write enforcement states: %w", err)
	}
	return nil
}

func writeEnforcementStatesQuery(states []EnforcementState) Query {
	rows := make([][]any, len(states))
	for i, s := range states {
		var pending uint8
		if s.EndpointsPending {
			pending = 1
		}
		rows[i] = []any{s.ProjectID, UTC(s.PeriodStart), s.Plan, s.Level, UTC(s.OverSince), UTC(s.ReleasedPeriod), s.Applied,
			pending, UTC(s.ObservedAt), UTC(s.UpdatedAt), s.Version}
	}
	return Query{Name: "enforcement.write_states", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.enforcement_state (project_id, period_start, plan, level, over_since, released_period, applied, endpoints_pending, observed_at, updated_at, version)"}
}

// AuditRecord is a row of enforcement_audit.
type AuditRecord struct {
	At           time.Time
	CycleID      string
	ProjectID    string
	Plan         string
	Metric       string
	Usage        uint64
	Limit        uint64
	Level        string
	Action       string
	Reason       string
	Mode         string
	Before       string
	After        string
	OperationIDs []string
	Outcome      string
	Error        string
}

// InsertAudit appends records in one batch; none writes nothing.
func InsertAudit(ctx context.Context, conn driver.Conn, db string, recs []AuditRecord) error {
	if err := insertAuditQuery(recs).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert enforcement audit: %w", err)
	}
	return nil
}

func insertAuditQuery(recs []AuditRecord) Query {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		ops := r.OperationIDs
		if ops == nil {
			ops = []string{}
		}
		rows[i] = []any{UTC(r.At), r.CycleID, r.ProjectID, r.Plan, r.Metric, r.Usage, r.Limit, r.Level, r.Action, r.Reason,
			r.Mode, r.Before, r.After, ops, r.Outcome, r.Error}
	}
	return Query{Name: "enforcement.audit_insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.enforcement_audit (at, cycle_id, project_id, plan, metric, usage, limit_value, level, action, reason, mode, before, after, operation_ids, outcome, error)"}
}

// AuditOf returns a project's audit records, newest first, at most limit of them.
func AuditOf(ctx context.Context, conn driver.Conn, db, projectID string, limit int) ([]AuditRecord, error) {
	rows, err := auditOfQuery(projectID, limit).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("audit of project %s: %w", projectID, err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		if err := rows.Scan(&r.At, &r.CycleID, &r.ProjectID, &r.Plan, &r.Metric, &r.Usage, &r.Limit, &r.Level, &r.Action, &r.Reason,
			&r.Mode, &r.Before, &r.After, &r.OperationIDs, &r.Outcome, &r.Error); err != nil {
			return nil, fmt.Errorf("audit of project %s: scan: %w", projectID, err)
		}
		r.At = r.At.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit of project %s: %w", projectID, err)
	}
	return out, nil
}

func auditOfQuery(projectID string, limit int) Query {
	return Query{Name: "enforcement.audit_of", Kind: KindSelect, Args: []any{projectID, uint64(max(limit, 1))}, SQL: `SELECT at, cycle_id, project_id, plan, metric, usage, limit_value, level, action, reason, mode, before, after, operation_ids, outcome, error
FROM {db}.enforcement_audit
WHERE project_id = ?
ORDER BY at DESC
LIMIT ?`}
}
