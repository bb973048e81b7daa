package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Billing sinks, as stored in the billing tables' sink column.
const (
	SinkMeter       = "meter"
	SinkUsageRecord = "usage_record"
)

// Ledger statuses, as stored in billing_ledger.status.
const (
	LedgerIntent = "intent"
	LedgerPushed = "pushed"
	LedgerFailed = "failed"
	LedgerLate   = "late"
)

// Late adjustment reasons, as stored in billing_late_adjustments.reason.
const (
	LateFinalized = "finalized"
	LateTooOld    = "too_old"
)

// LedgerRow is one step of one (customer, target, hour, sink) in billing_ledger.
type LedgerRow struct {
	CustomerID string
	// Target is the meter's event_name (SinkMeter) or the legacy price id (SinkUsageRecord).
	Target string
	Hour   time.Time
	Sink   string
	Metric string
	// Value is the billing units of this revision; ConfirmedValue what Stripe last confirmed.
	Value, ConfirmedValue int64
	Revision              uint32
	Identifier            string
	Status                string
	StripeID, RequestID   string
	HTTPStatus            uint16
	RecordedAt            time.Time
	RunID                 string
	// Version is 2×Revision for an intent, 2×Revision+1 for its outcome.
	Version uint64
	// Accounted is read, not written: the value of the key's newest pushed or late row (0 if
	// none), i.e. what Stripe plus recorded late adjustments account for. It is the base of a
	// later late adjustment even when an intent or failure follows that row.
	Accounted int64
}

// InsertLedger writes rows in one batch; none writes nothing.
func InsertLedger(ctx context.Context, conn driver.Conn, db string, rows []LedgerRow) error {
	for _, r := range rows {
		if r.CustomerID == "" || r.Target == "" || (r.Sink != SinkMeter && r.Sink != SinkUsageRecord) {
			return fmt.Errorf("insert ledger: customer %q target %q: need a customer, a target and sink meter or usage_record", r.CustomerID, r.Target)
		}
	}
	if err := insertLedgerQuery(rows).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert ledger: %w", err)
	}
	return nil
}

func insertLedgerQuery(rows []LedgerRow) Query {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = []any{r.CustomerID, r.Target, UTC(r.Hour), r.Sink, r.Metric, r.Value, r.ConfirmedValue, r.Revision, r.Identifier,
			r.Status, r.StripeID, r.RequestID, r.HTTPStatus, UTC(r.RecordedAt), r.RunID, r.Version}
	}
	return Query{Name: "billing.ledger_insert", Kind: KindInsert, Rows: out,
		SQL: "INSERT INTO {db}.billing_ledger (customer_id, target, hour, sink, metric, value, confirmed_value, revision, identifier, status, stripe_id, request_id, http_status, recorded_at, run_id, version)"}
}

// Ledger returns the latest row of every (customer, target, hour, sink) with hour in
// [from, to), ordered by key.
func Ledger(ctx context.Context, conn driver.Conn, db string, from, to time.Time) ([]LedgerRow, error) {
	rows, err := ledgerQuery(from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer rows.Close()
	var out []LedgerRow
	for rows.Next() {
		var r LedgerRow
		if err := rows.Scan(&r.CustomerID, &r.Target, &r.Hour, &r.Sink, &r.Metric, &r.Value, &r.ConfirmedValue, &r.Revision, &r.Identifier,
			&r.Status, &r.StripeID, &r.RequestID, &r.HTTPStatus, &r.RecordedAt, &r.RunID, &r.Version, &r.Accounted); err != nil {
			return nil, fmt.Errorf("ledger: scan: %w", err)
		}
		r.Hour, r.RecordedAt = r.Hour.UTC(), FromDB(r.RecordedAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return out, nil
}

// The newest step is argMax by version (as FINAL would pick; two rows of one version are the
// same step written twice). Accounted needs the older pushed/late rows too, which FINAL drops.
func ledgerQuery(from, to time.Time) Query {
	return Query{Name: "billing.ledger", Kind: KindSelect, Args: []any{UTC(from), UTC(to)}, SQL: `SELECT customer_id, target, hour, toString(sink),
    argMax(metric, version), argMax(value, version), argMax(confirmed_value, version), argMax(revision, version),
    argMax(identifier, version), argMax(toString(status), version), argMax(stripe_id, version), argMax(request_id, version),
    argMax(http_status, version), argMax(recorded_at, version), argMax(run_id, version), max(version),
    argMaxIf(value, version, toString(status) IN ('pushed', 'late'))
FROM {db}.billing_ledger
WHERE hour >= ? AND hour < ?
GROUP BY customer_id, target, hour, sink
ORDER BY customer_id, target, hour, sink`}
}

// HourlyUsage is the raw usage of one project, metric and hour.
type HourlyUsage struct {
	ProjectID string
	Metric    string
	Hour      time.Time
	Value     uint64
}

// BillingUsage returns the raw hourly usage of metrics in [from, to), one row per (project,
// metric, hour) with a non-zero value, ordered by project, metric and hour. It reads
// usage_facts FINAL filtered on key columns only, which gives usage_hourly's rows (see
// docs/data-model.md) without deduplicating the whole table first.
func BillingUsage(ctx context.Context, conn driver.Conn, db string, metrics []string, from, to time.Time) ([]HourlyUsage, error) {
	if len(metrics) == 0 {
		return nil, nil
	}
	rows, err := billingUsageQuery(metrics, from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("billing usage: %w", err)
	}
	defer rows.Close()
	var out []HourlyUsage
	for rows.Next() {
		var u HourlyUsage
		if err := rows.Scan(&u.ProjectID, &u.Metric, &u.Hour, &u.Value); err != nil {
			return nil, fmt.Errorf("billing usage: scan: %w", err)
		}
		u.Hour = u.Hour.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing usage: %w", err)
	}
	return out, nil
}

// BillingUsageTotals returns, per (project, metric), the sum of raw usage of metrics over
// [from, to), non-zero sums only: a whole stretch of a billing period in one row per project and
// metric, so a push need not read every hour since the period began.
func BillingUsageTotals(ctx context.Context, conn driver.Conn, db string, metrics []string, from, to time.Time) ([]HourlyUsage, error) {
	if len(metrics) == 0 {
		return nil, nil
	}
	rows, err := billingTotalsQuery(metrics, from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("billing usage totals: %w", err)
	}
	defer rows.Close()
	var out []HourlyUsage
	for rows.Next() {
		u := HourlyUsage{Hour: from.UTC()}
		if err := rows.Scan(&u.ProjectID, &u.Metric, &u.Value); err != nil {
			return nil, fmt.Errorf("billing usage totals: scan: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing usage totals: %w", err)
	}
	return out, nil
}

func billingTotalsQuery(metrics []string, from, to time.Time) Query {
	args := make([]any, 0, len(metrics)+2)
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, UTC(from), UTC(to))
	return Query{Name: "billing.usage_totals", Kind: KindSelect, Args: args, SQL: `SELECT project_id, metric, sum(value) AS v
FROM {db}.usage_facts FINAL
WHERE metric IN (` + InList(len(metrics)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric
HAVING v > 0
ORDER BY project_id, metric`}
}

// BillingUsageOf is BillingUsage for some projects only (read in chunks).
func BillingUsageOf(ctx context.Context, conn driver.Conn, db string, metrics, projectIDs []string, from, to time.Time) ([]HourlyUsage, error) {
	var out []HourlyUsage
	if len(metrics) == 0 {
		return nil, nil
	}
	for start := 0; start < len(projectIDs); start += MaxInList {
		rows, err := billingUsageOfQuery(metrics, projectIDs[start:min(start+MaxInList, len(projectIDs))], from, to).Select(ctx, conn, db)
		if err != nil {
			return nil, fmt.Errorf("billing usage of projects: %w", err)
		}
		for rows.Next() {
			var u HourlyUsage
			if err := rows.Scan(&u.ProjectID, &u.Metric, &u.Hour, &u.Value); err != nil {
				rows.Close()
				return nil, fmt.Errorf("billing usage of projects: scan: %w", err)
			}
			u.Hour = u.Hour.UTC()
			out = append(out, u)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("billing usage of projects: %w", err)
		}
	}
	return out, nil
}

func billingUsageOfQuery(metrics, projectIDs []string, from, to time.Time) Query {
	args := make([]any, 0, len(metrics)+len(projectIDs)+2)
	for _, m := range metrics {
		args = append(args, m)
	}
	for _, p := range projectIDs {
		args = append(args, p)
	}
	args = append(args, UTC(from), UTC(to))
	return Query{Name: "billing.usage_of", Kind: KindSelect, Args: args, SQL: `SELECT project_id, metric, hour, sum(value) AS v
FROM {db}.usage_facts FINAL
WHERE metric IN (` + InList(len(metrics)) + `) AND project_id IN (` + InList(len(projectIDs)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric, hour
HAVING v > 0
ORDER BY project_id, metric, hour`}
}

// The sum runs over org_id only (a project belongs to one org); HAVING drops zero rows after
// deduplication, never before.
func billingUsageQuery(metrics []string, from, to time.Time) Query {
	args := make([]any, 0, len(metrics)+2)
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, UTC(from), UTC(to))
	return Query{Name: "billing.usage", Kind: KindSelect, Args: args, SQL: `SELECT project_id, metric, hour, sum(value) AS v
FROM {db}.usage_facts FINAL
WHERE metric IN (` + InList(len(metrics)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric, hour
HAVING v > 0
ORDER BY project_id, metric, hour`}
}

// LateAdjustment is a revision Stripe can no longer take, for finance to settle by hand.
type LateAdjustment struct {
	CustomerID, Target string
	Hour               time.Time
	Sink               string
	Revision           uint32
	Metric             string
	PeriodStart        time.Time
	PeriodEnd          time.Time
	// OldValue is what Stripe (plus earlier adjustments) holds, NewValue what it should;
	// Amount = NewValue − OldValue, in billing units.
	OldValue, NewValue, Amount int64
	Reason                     string
	DetectedAt                 time.Time
	RunID                      string
}

// InsertLateAdjustments writes adjustments in one batch.
func InsertLateAdjustments(ctx context.Context, conn driver.Conn, db string, adj []LateAdjustment) error {
	if err := insertLateQuery(adj).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert late adjustments: %w", err)
	}
	return nil
}

func insertLateQuery(adj []LateAdjustment) Query {
	rows := make([][]any, len(adj))
	for i, a := range adj {
		rows[i] = []any{a.CustomerID, a.Target, UTC(a.Hour), a.Sink, a.Revision, a.Metric, UTC(a.PeriodStart), UTC(a.PeriodEnd),
			a.OldValue, a.NewValue, a.Amount, a.Reason, UTC(a.DetectedAt), a.RunID}
	}
	return Query{Name: "billing.late_insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.billing_late_adjustments (customer_id, target, hour, sink, revision, metric, period_start, period_end, old_value, new_value, amount, reason, detected_at, run_id)"}
}

// LateAdjustments returns the adjustments of hours in [from, to), ordered by key.
func LateAdjustments(ctx context.Context, conn driver.Conn, db string, from, to time.Time) ([]LateAdjustment, error) {
	rows, err := lateQuery(from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("late adjustments: %w", err)
	}
	defer rows.Close()
	var out []LateAdjustment
	for rows.Next() {
		var a LateAdjustment
		if err := rows.Scan(&a.CustomerID, &a.Target, &a.Hour, &a.Sink, &a.Revision, &a.Metric, &a.PeriodStart, &a.PeriodEnd,
			&a.OldValue, &a.NewValue, &a.Amount, &a.Reason, &a.DetectedAt, &a.RunID); err != nil {
			return nil, fmt.Errorf("late adjustments: scan: %w", err)
		}
		a.Hour, a.PeriodStart, a.PeriodEnd, a.DetectedAt = a.Hour.UTC(), a.PeriodStart.UTC(), a.PeriodEnd.UTC(), a.DetectedAt.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("late adjustments: %w", err)
	}
	return out, nil
}

func lateQuery(from, to time.Time) Query {
	return Query{Name: "billing.late", Kind: KindSelect, Args: []any{UTC(from), UTC(to)}, SQL: `SELECT customer_id, target, hour, toString(sink), revision, metric, period_start, period_end,
    old_value, new_value, amount, toString(reason), detected_at, run_id
FROM {db}.billing_late_adjustments FINAL
WHERE hour >= ? AND hour < ?
ORDER BY customer_id, target, hour, sink, revision`}
}

// Drift is one bucket where Stripe's value differs from the ledger's.
type Drift struct {
	CheckedAt          time.Time
	RunID              string
	CustomerID, Target string
	Sink               string
	// Bucket is the hour (meters) or the billing period's start (usage records).
	Bucket           time.Time
	Expected, Actual int64
	Drift            int64
}

// InsertDrift writes drift rows in one batch.
func InsertDrift(ctx context.Context, conn driver.Conn, db string, d []Drift) error {
	if err := insertDriftQuery(d).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert drift: %w", err)
	}
	return nil
}

func insertDriftQuery(d []Drift) Query {
	rows := make([][]any, len(d))
	for i, x := range d {
		rows[i] = []any{UTC(x.CheckedAt), x.RunID, x.CustomerID, x.Target, x.Sink, UTC(x.Bucket), x.Expected, x.Actual, x.Drift}
	}
	return Query{Name: "billing.drift_insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.billing_drift (checked_at, run_id, customer_id, target, sink, bucket, expected, actual, drift)"}
}

// DriftOfRun returns the drift rows one reconciliation stored, ordered by key.
func DriftOfRun(ctx context.Context, conn driver.Conn, db string, runID string) ([]Drift, error) {
	rows, err := driftQuery(runID).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("drift of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Drift
	for rows.Next() {
		var d Drift
		if err := rows.Scan(&d.CheckedAt, &d.RunID, &d.CustomerID, &d.Target, &d.Sink, &d.Bucket, &d.Expected, &d.Actual, &d.Drift); err != nil {
			return nil, fmt.Errorf("drift of run %s: scan: %w", runID, err)
		}
		d.CheckedAt, d.Bucket = d.CheckedAt.UTC(), d.Bucket.UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drift of run %s: %w", runID, err)
	}
	return out, nil
}

func driftQuery(runID string) Query {
	return Query{Name: "billing.drift", Kind: KindSelect, Args: []any{runID}, SQL: `SELECT checked_at, run_id, customer_id, target, toString(sink), bucket, expected, actual, drift
FROM {db}.billing_drift
WHERE run_id = ?
ORDER BY customer_id, target, bucket`}
}
