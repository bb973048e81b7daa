// Package chstore is billing's storage on ClickHouse: the reads of raw usage billing runs on
// usage_hourly's rows, and the tables billing owns (billing_ledger, billing_late_adjustments,
// billing_drift; schema/migrations/0004_billing.sql). It implements billing.Store.
package chstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/schema"
)

// Store runs billing's statements in one database.
type Store struct {
	conn driver.Conn
	db   string
}

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{conn: conn, db: database} }

var _ billing.Store = (*Store)(nil)

// Usage returns the raw hourly usage of metrics in [from, to), one row per (project, metric,
// hour) with a non-zero value, ordered by project, metric and hour.
func (s *Store) Usage(ctx context.Context, metrics []string, from, to time.Time) ([]billing.HourlyUsage, error) {
	if len(metrics) == 0 {
		return nil, nil
	}
	out, err := s.hourlyUsage(ctx, usageQuery(metrics, from, to))
	if err != nil {
		return nil, fmt.Errorf("billing usage: %w", err)
	}
	return out, nil
}

// UsageTotals returns, per (project, metric), the sum of raw usage of metrics over [from, to),
// non-zero sums only, each at hour from: a whole stretch of a billing period in one row per
// project and metric, so a push need not read every hour since the period began.
func (s *Store) UsageTotals(ctx context.Context, metrics []string, from, to time.Time) ([]billing.HourlyUsage, error) {
	if len(metrics) == 0 {
		return nil, nil
	}
	rows, err := usageTotalsQuery(metrics, from, to).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("billing usage totals: %w", err)
	}
	defer rows.Close()
	var out []billing.HourlyUsage
	for rows.Next() {
		u := billing.HourlyUsage{Hour: from.UTC()}
		var f float64
		if err := rows.Scan(&u.ProjectID, &u.Metric, &u.Value, &f); err != nil {
			return nil, fmt.Errorf("billing usage totals: scan: %w", err)
		}
		if err := checkSum(u, f); err != nil {
			return nil, fmt.Errorf("billing usage totals from %s: %w", from.UTC().Format(time.RFC3339), err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing usage totals: %w", err)
	}
	return out, nil
}

// UsageOf is Usage for some projects only, read in chunks of schema.MaxInList.
func (s *Store) UsageOf(ctx context.Context, metrics, projectIDs []string, from, to time.Time) ([]billing.HourlyUsage, error) {
	if len(metrics) == 0 || len(projectIDs) == 0 {
		return nil, nil
	}
	var out []billing.HourlyUsage
	err := schema.Chunks(projectIDs, func(chunk []string) error {
		rows, err := s.hourlyUsage(ctx, usageOfQuery(metrics, chunk, from, to))
		out = append(out, rows...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("billing usage of projects: %w", err)
	}
	return out, nil
}

// hourlyUsage runs a select of (project, metric, hour, value) rows.
func (s *Store) hourlyUsage(ctx context.Context, q schema.Query) ([]billing.HourlyUsage, error) {
	rows, err := q.Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []billing.HourlyUsage
	for rows.Next() {
		var u billing.HourlyUsage
		var f float64
		if err := rows.Scan(&u.ProjectID, &u.Metric, &u.Hour, &u.Value, &f); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		u.Hour = u.Hour.UTC()
		if err := checkSum(u, f); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// twoTo63 is 2^63 as a float64: a float sum below it means the integer sum (< 2^64) did not wrap.
const twoTo63 = float64(1 << 63)

// checkSum refuses a usage sum that wrapped in ClickHouse or exceeds the int64 billing holds:
// f is the same sum as a Float64, which cannot wrap.
func checkSum(u billing.HourlyUsage, f float64) error {
	if f < twoTo63 && u.Value <= math.MaxInt64 {
		return nil
	}
	return fmt.Errorf("usage of project %s metric %s hour %s sums to about %.4g, beyond the %d billing can hold: refusing it rather than billing a wrapped sum (hostile or corrupt usage_facts)",
		u.ProjectID, u.Metric, u.Hour.UTC().Format(time.RFC3339), f, int64(math.MaxInt64))
}

// InsertLedger writes rows in one batch; none writes nothing.
func (s *Store) InsertLedger(ctx context.Context, rows []billing.LedgerRow) error {
	for _, r := range rows {
		if r.CustomerID == "" || r.Target == "" || !r.Sink.Valid() {
			return fmt.Errorf("insert ledger: customer %q target %q: need a customer, a target and sink meter or usage_record", r.CustomerID, r.Target)
		}
		if r.Accounted < 0 { // -1 marks rows written before accounted_value existed (migration 0010)
			return fmt.Errorf("insert ledger: customer %s target %s hour %s revision %d: accounted value %d is negative",
				r.CustomerID, r.Target, r.Hour.UTC().Format(time.RFC3339), r.Revision, r.Accounted)
		}
	}
	if err := insertLedgerQuery(rows).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert ledger: %w", err)
	}
	return nil
}

// Ledger returns the latest row of every (customer, target, hour, sink) with hour in
// [from, to), ordered by key. Accounted is the one that row carries, so a merge of older rows
// cannot change it.
func (s *Store) Ledger(ctx context.Context, from, to time.Time) ([]billing.LedgerRow, error) {
	rows, err := ledgerQuery(from, to).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer rows.Close()
	var out []billing.LedgerRow
	for rows.Next() {
		var r billing.LedgerRow
		var sink, status string
		if err := rows.Scan(&r.CustomerID, &r.Target, &r.Hour, &sink, &r.Metric, &r.Value, &r.ConfirmedValue, &r.Revision, &r.Identifier,
			&status, &r.StripeID, &r.RequestID, &r.HTTPStatus, &r.RecordedAt, &r.RunID, &r.Version, &r.Accounted); err != nil {
			return nil, fmt.Errorf("ledger: scan: %w", err)
		}
		r.Sink, r.Status = billing.SinkKind(sink), billing.LedgerStatus(status)
		r.Hour, r.RecordedAt = r.Hour.UTC(), schema.FromDB(r.RecordedAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return out, nil
}

// InsertLateAdjustments writes adjustments in one batch; none writes nothing.
func (s *Store) InsertLateAdjustments(ctx context.Context, adj []billing.LateAdjustment) error {
	if err := insertLateQuery(adj).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert late adjustments: %w", err)
	}
	return nil
}

// InsertDrift writes drift rows in one batch; none writes nothing.
func (s *Store) InsertDrift(ctx context.Context, d []billing.Drift) error {
	if err := insertDriftQuery(d).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert drift: %w", err)
	}
	return nil
}

// lateAdjustments returns the adjustments of hours in [from, to), ordered by key. Finance reads
// the table directly (docs/billing.md); the product does not, so this reader is unexported
// and serves the store's tests and the registry.
func (s *Store) lateAdjustments(ctx context.Context, from, to time.Time) ([]billing.LateAdjustment, error) {
	rows, err := lateQuery(from, to).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("late adjustments: %w", err)
	}
	defer rows.Close()
	var out []billing.LateAdjustment
	for rows.Next() {
		var a billing.LateAdjustment
		var sink, reason string
		if err := rows.Scan(&a.CustomerID, &a.Target, &a.Hour, &sink, &a.Revision, &a.Metric, &a.PeriodStart, &a.PeriodEnd,
			&a.OldValue, &a.NewValue, &a.Amount, &reason, &a.DetectedAt, &a.RunID); err != nil {
			return nil, fmt.Errorf("late adjustments: scan: %w", err)
		}
		a.Sink, a.Reason = billing.SinkKind(sink), billing.LateReason(reason)
		a.Hour, a.PeriodStart, a.PeriodEnd, a.DetectedAt = a.Hour.UTC(), a.PeriodStart.UTC(), a.PeriodEnd.UTC(), a.DetectedAt.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("late adjustments: %w", err)
	}
	return out, nil
}

// driftOfRun returns the drift rows one reconciliation stored, ordered by key (unexported for
// the reason lateAdjustments is).
func (s *Store) driftOfRun(ctx context.Context, runID string) ([]billing.Drift, error) {
	rows, err := driftQuery(runID).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("drift of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []billing.Drift
	for rows.Next() {
		var d billing.Drift
		var sink string
		if err := rows.Scan(&d.CheckedAt, &d.RunID, &d.CustomerID, &d.Target, &sink, &d.Bucket, &d.Expected, &d.Actual, &d.Drift); err != nil {
			return nil, fmt.Errorf("drift of run %s: scan: %w", runID, err)
		}
		d.Sink = billing.SinkKind(sink)
		d.CheckedAt, d.Bucket = d.CheckedAt.UTC(), d.Bucket.UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drift of run %s: %w", runID, err)
	}
	return out, nil
}

// InsertReconcileRun records one reconciliation.
func (s *Store) InsertReconcileRun(ctx context.Context, run billing.ReconcileRun) error {
	if err := insertReconcileRunQuery(run).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert reconcile run %s: %w", run.RunID, err)
	}
	return nil
}

// LastReconciles returns when the newest finished reconciliation of each trigger started.
func (s *Store) LastReconciles(ctx context.Context) (map[billing.ReconcileTrigger]time.Time, error) {
	rows, err := lastReconcilesQuery().Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("last reconciles: %w", err)
	}
	defer rows.Close()
	out := map[billing.ReconcileTrigger]time.Time{}
	for rows.Next() {
		var kind string
		var at time.Time
		if err := rows.Scan(&kind, &at); err != nil {
			return nil, fmt.Errorf("last reconciles: scan: %w", err)
		}
		out[billing.ReconcileTrigger(kind)] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last reconciles: %w", err)
	}
	return out, nil
}

// LatestReconcile returns the newest finished reconciliation and its drift per (sink, target).
func (s *Store) LatestReconcile(ctx context.Context) (run billing.ReconcileRun, drift []billing.TargetDrift, ok bool, err error) {
	rows, err := latestReconcileQuery().Select(ctx, s.conn, s.db)
	if err != nil {
		return run, nil, false, fmt.Errorf("latest reconcile: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var repair uint8
		if err := rows.Scan(&run.RunID, &kind, &run.StartedAt, &run.FinishedAt, &run.From, &run.To,
			&run.Compared, &run.Drifting, &run.Unsettled, &run.DriftUnits, &repair); err != nil {
			return run, nil, false, fmt.Errorf("latest reconcile: scan: %w", err)
		}
		run.Trigger, run.Repair, ok = billing.ReconcileTrigger(kind), repair == 1, true
		run.StartedAt, run.FinishedAt, run.From, run.To = run.StartedAt.UTC(), run.FinishedAt.UTC(), run.From.UTC(), run.To.UTC()
	}
	if err := rows.Err(); err != nil || !ok {
		return run, nil, false, err
	}
	drift, err = s.driftByTarget(ctx, run.RunID)
	return run, drift, err == nil, err
}

// driftByTarget sums one run's drift rows per (sink, target).
func (s *Store) driftByTarget(ctx context.Context, runID string) ([]billing.TargetDrift, error) {
	rows, err := driftByTargetQuery(runID).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("drift of run %s by target: %w", runID, err)
	}
	defer rows.Close()
	var out []billing.TargetDrift
	for rows.Next() {
		var d billing.TargetDrift
		var sink string
		if err := rows.Scan(&sink, &d.Target, &d.Values, &d.Units); err != nil {
			return nil, fmt.Errorf("drift of run %s by target: scan: %w", runID, err)
		}
		d.Sink = billing.SinkKind(sink)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drift of run %s by target: %w", runID, err)
	}
	return out, nil
}
