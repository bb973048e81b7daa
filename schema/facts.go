package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Fact is one hourly usage value of one project and metric: a row of usage_facts.
type Fact struct {
	OrgID     string
	ProjectID string
	// Metric is Neon's metric name, like compute_unit_seconds.
	Metric string
	// Hour is the start of the hour, UTC, on the hour.
	Hour time.Time
	// Value is in Neon's raw unit of the metric (CU-seconds, byte-hours, bytes, branch-hours).
	Value      uint64
	PeriodID   string
	PeriodPlan string
	// CollectedAt is when the value was read from Neon (stored to the second).
	CollectedAt time.Time
	// Version orders rows of the same (org, project, metric, hour): the highest replaces the
	// others. A re-collection or revision must use a version above the stored one.
	Version uint64
}

// StoredFact is the latest stored value of a fact and its version.
type StoredFact struct {
	Value   uint64
	Version uint64
}

// StoredValue is one stored hourly fact in compact form: its project and metric are positions
// in the lists the caller passed, its hour is Unix seconds. Reading numbers instead of strings
// keeps the collector's per-page read cheap.
type StoredValue struct {
	Project, Metric int
	Hour            int64
	Value, Version  uint64
}

// ScanStoredFacts calls fn with every stored version of every hourly fact of these projects and
// metrics in [from, to); the caller keeps the highest version per key. Facts of other metrics
// are not read.
//
// It reads without FINAL on purpose: on 18.16, FINAL over the scattered key ranges of a page of
// projects (pages follow Neon's creation order, not the key order) costs about 4× a plain read,
// and versions of a key are unique (writers raise them above the stored one), so picking the
// highest version client-side is the same rule FINAL applies.
func ScanStoredFacts(ctx context.Context, conn driver.Conn, db, orgID string, projectIDs, metrics []string, from, to time.Time, fn func(StoredValue)) error {
	if len(metrics) == 0 {
		return nil
	}
	for start := 0; start < len(projectIDs); start += MaxInList {
		chunk := projectIDs[start:min(start+MaxInList, len(projectIDs))]
		if err := scanStored(ctx, conn, db, scanStoredQuery(orgID, chunk, metrics, from, to), start, fn); err != nil {
			return fmt.Errorf("stored facts org %s: %w", orgID, err)
		}
	}
	return nil
}

func scanStored(ctx context.Context, conn driver.Conn, db string, q Query, offset int, fn func(StoredValue)) error {
	rows, err := q.Select(ctx, conn, db)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		p, m         uint64
		h            uint32
		value, versn uint64
	)
	for rows.Next() {
		if err := rows.Scan(&p, &m, &h, &value, &versn); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		// indexOf is 1-based; the IN lists guarantee a match.
		fn(StoredValue{Project: offset + int(p) - 1, Metric: int(m) - 1, Hour: int64(h), Value: value, Version: versn})
	}
	return rows.Err()
}

func scanStoredQuery(orgID string, projectIDs, metrics []string, from, to time.Time) Query {
	args := make([]any, 0, 2*len(projectIDs)+2*len(metrics)+3)
	for _, p := range projectIDs {
		args = append(args, p)
	}
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, orgID)
	for _, p := range projectIDs {
		args = append(args, p)
	}
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, UTC(from), UTC(to))
	return Query{Name: "facts.scan_stored", Kind: KindSelect, Args: args,
		SQL: `SELECT indexOf([` + InList(len(projectIDs)) + `], project_id) AS p, indexOf([` + InList(len(metrics)) + `], metric) AS m,
  toUInt32(hour) AS h, value, version
FROM {db}.usage_facts
WHERE org_id = ? AND project_id IN (` + InList(len(projectIDs)) + `) AND metric IN (` + InList(len(metrics)) + `) AND hour >= ? AND hour < ?`}
}

// InsertFacts writes facts to usage_facts in one batch. A fact whose key is already stored
// replaces it when its version is higher; nothing is ever added up. Hours must be on the hour.
//
// It is the collector's hot path, so it appends whole columns rather than rows of interfaces:
// the same statement as insertFactsQuery, several times faster on large batches.
func InsertFacts(ctx context.Context, conn driver.Conn, db string, facts []Fact) error {
	if len(facts) == 0 {
		return nil
	}
	n := len(facts)
	var (
		orgs, projects, metrics = make([]string, n), make([]string, n), make([]string, n)
		periods, plans          = make([]string, n), make([]string, n)
		hours, collected        = make([]time.Time, n), make([]time.Time, n)
		values, versions        = make([]uint64, n), make([]uint64, n)
	)
	for i, f := range facts {
		if err := checkFact(f); err != nil {
			return fmt.Errorf("insert facts: %w", err)
		}
		orgs[i], projects[i], metrics[i] = f.OrgID, f.ProjectID, f.Metric
		hours[i], values[i], periods[i], plans[i] = UTC(f.Hour), f.Value, f.PeriodID, f.PeriodPlan
		collected[i], versions[i] = UTC(f.CollectedAt), f.Version
	}
	q := insertFactsQuery(nil)
	if err := q.InsertColumns(ctx, conn, db, orgs, projects, metrics, hours, values, periods, plans, collected, versions); err != nil {
		return fmt.Errorf("insert facts: %w", err)
	}
	return nil
}

func checkFact(f Fact) error {
	switch {
	case f.OrgID == "" || f.ProjectID == "" || f.Metric == "":
		return fmt.Errorf("fact %s/%s/%s %s: empty org, project or metric", f.OrgID, f.ProjectID, f.Metric, f.Hour.UTC().Format(time.RFC3339))
	case !f.Hour.Truncate(time.Hour).Equal(f.Hour) || f.Hour.Unix() <= 0:
		return fmt.Errorf("fact %s/%s/%s: hour %s is not the start of an hour after 1970", f.OrgID, f.ProjectID, f.Metric, f.Hour.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func insertFactsQuery(facts []Fact) Query {
	rows := make([][]any, len(facts))
	for i, f := range facts {
		rows[i] = []any{f.OrgID, f.ProjectID, f.Metric, UTC(f.Hour), f.Value, f.PeriodID, f.PeriodPlan, UTC(f.CollectedAt), f.Version}
	}
	return Query{Name: "facts.insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)"}
}

// UsageTotals returns sum(value) per (project, metric) of the organization's hourly facts in
// [from, to), read through the usage_hourly view, the contract billing and finance read.
func UsageTotals(ctx context.Context, conn driver.Conn, db, orgID string, from, to time.Time) (map[[2]string]uint64, error) {
	rows, err := usageTotalsQuery(orgID, from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("usage totals org %s: %w", orgID, err)
	}
	defer rows.Close()
	out := map[[2]string]uint64{}
	for rows.Next() {
		var (
			project, metric string
			total           uint64
		)
		if err := rows.Scan(&project, &metric, &total); err != nil {
			return nil, fmt.Errorf("usage totals org %s: scan: %w", orgID, err)
		}
		out[[2]string{project, metric}] = total
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage totals org %s: %w", orgID, err)
	}
	return out, nil
}

func usageTotalsQuery(orgID string, from, to time.Time) Query {
	return Query{Name: "usage.totals", Kind: KindSelect, Args: []any{orgID, UTC(from), UTC(to)}, SQL: `SELECT project_id, metric, sum(value) AS total
FROM {db}.usage_hourly
WHERE org_id = ? AND hour >= ? AND hour < ?
GROUP BY project_id, metric
ORDER BY project_id, metric`}
}
