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
type Store struct{ schema.Tables }

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{schema.NewTables(conn, database)} }

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
	out, err := schema.All(ctx, usageTotalsQuery(metrics, from, to), s.Conn, s.DB, func(r schema.Row) (billing.HourlyUsage, error) {
		u := billing.HourlyUsage{Hour: from.UTC()}
		var f float64
		if err := r.Scan(&u.ProjectID, &u.Metric, &u.Value, &f); err != nil {
			return u, err
		}
		return u, checkSum(u, f)
	})
	if err != nil {
		return nil, fmt.Errorf("billing usage totals from %s: %w", from.UTC().Format(time.RFC3339), err)
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
	return schema.All(ctx, q, s.Conn, s.DB, func(r schema.Row) (u billing.HourlyUsage, err error) {
		var f float64
		if err := r.Scan(&u.ProjectID, &u.Metric, &u.Hour, &u.Value, &f); err != nil {
			return u, err
		}
		u.Hour = u.Hour.UTC()
		return u, checkSum(u, f)
	})
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

// Lagging returns the projects whose final hours end before to, with how far they are
// collected and final. An explicit sweep re-reads its lookback every run, so the hours before
// its watermark less the provisional window are final for every project of the org.
func (s *Store) Lagging(ctx context.Context, to time.Time, provisional time.Duration) ([]billing.Lagging, error) {
	rows, err := schema.All(ctx, laggingQuery(to), s.Conn, s.DB, func(r schema.Row) (l billing.Lagging, err error) {
		var wm time.Time
		err = r.Scan(&l.ProjectID, &l.CompleteThrough, &l.FinalThrough, &wm)
		if wm = schema.FromDB(wm); !wm.IsZero() {
			l.CompleteThrough = laterOf(l.CompleteThrough, wm)
			l.FinalThrough = laterOf(l.FinalThrough, wm.Add(-provisional).Truncate(time.Hour))
		}
		l.CompleteThrough, l.FinalThrough = l.CompleteThrough.UTC(), l.FinalThrough.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("lagging projects: %w", err)
	}
	out := rows[:0]
	for _, l := range rows {
		if l.FinalThrough.Before(to) {
			out = append(out, l)
		}
	}
	return out, nil
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
	if err := insertLedgerQuery(rows).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("insert ledger: %w", err)
	}
	return nil
}

// Ledger returns the latest row of every (customer, target, hour, sink) with hour in
// [from, to), ordered by key. Accounted is the one that row carries, so a merge of older rows
// cannot change it.
func (s *Store) Ledger(ctx context.Context, from, to time.Time) ([]billing.LedgerRow, error) {
	out, err := schema.All(ctx, ledgerQuery(from, to), s.Conn, s.DB, func(row schema.Row) (r billing.LedgerRow, err error) {
		var sink, status string
		err = row.Scan(&r.CustomerID, &r.Target, &r.Hour, &sink, &r.Metric, &r.Value, &r.ConfirmedValue, &r.Revision, &r.Identifier,
			&status, &r.StripeID, &r.RequestID, &r.HTTPStatus, &r.RecordedAt, &r.RunID, &r.Version, &r.Accounted)
		r.Sink, r.Status = billing.SinkKind(sink), billing.LedgerStatus(status)
		r.Hour, r.RecordedAt = r.Hour.UTC(), schema.FromDB(r.RecordedAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return out, nil
}

// InsertLateAdjustments writes adjustments in one batch; none writes nothing.
func (s *Store) InsertLateAdjustments(ctx context.Context, adj []billing.LateAdjustment) error {
	if err := insertLateQuery(adj).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("insert late adjustments: %w", err)
	}
	return nil
}

// InsertDrift writes drift rows in one batch; none writes nothing.
func (s *Store) InsertDrift(ctx context.Context, d []billing.Drift) error {
	if err := insertDriftQuery(d).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("insert drift: %w", err)
	}
	return nil
}

// lateAdjustments returns the adjustments of hours in [from, to), ordered by key. Finance reads
// the table directly (docs/billing.md); the product does not, so this reader is unexported
// and serves the store's tests and the registry.
func (s *Store) lateAdjustments(ctx context.Context, from, to time.Time) ([]billing.LateAdjustment, error) {
	out, err := schema.All(ctx, lateQuery(from, to), s.Conn, s.DB, func(r schema.Row) (a billing.LateAdjustment, err error) {
		var sink, reason string
		err = r.Scan(&a.CustomerID, &a.Target, &a.Hour, &sink, &a.Revision, &a.Metric, &a.PeriodStart, &a.PeriodEnd,
			&a.OldValue, &a.NewValue, &a.Amount, &reason, &a.DetectedAt, &a.RunID)
		a.Sink, a.Reason = billing.SinkKind(sink), billing.LateReason(reason)
		a.Hour, a.PeriodStart, a.PeriodEnd, a.DetectedAt = a.Hour.UTC(), a.PeriodStart.UTC(), a.PeriodEnd.UTC(), a.DetectedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("late adjustments: %w", err)
	}
	return out, nil
}

// driftOfRun returns the drift rows one reconciliation stored, ordered by key (unexported for
// the reason lateAdjustments is).
func (s *Store) driftOfRun(ctx context.Context, runID string) ([]billing.Drift, error) {
	out, err := schema.All(ctx, driftQuery(runID), s.Conn, s.DB, func(r schema.Row) (d billing.Drift, err error) {
		var sink string
		err = r.Scan(&d.CheckedAt, &d.RunID, &d.CustomerID, &d.Target, &sink, &d.Bucket, &d.Expected, &d.Actual, &d.Drift)
		d.Sink = billing.SinkKind(sink)
		d.CheckedAt, d.Bucket = d.CheckedAt.UTC(), d.Bucket.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("drift of run %s: %w", runID, err)
	}
	return out, nil
}

// InsertReconcileRun records one reconciliation.
func (s *Store) InsertReconcileRun(ctx context.Context, run billing.ReconcileRun) error {
	if err := insertReconcileRunQuery(run).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("insert reconcile run %s: %w", run.RunID, err)
	}
	return nil
}

// LastReconciles returns when the newest finished reconciliation of each trigger started.
func (s *Store) LastReconciles(ctx context.Context) (map[billing.ReconcileTrigger]time.Time, error) {
	out := map[billing.ReconcileTrigger]time.Time{}
	err := lastReconcilesQuery().Each(ctx, s.Conn, s.DB, func(r schema.Row) error {
		var kind string
		var at time.Time
		err := r.Scan(&kind, &at)
		out[billing.ReconcileTrigger(kind)] = at.UTC()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("last reconciles: %w", err)
	}
	return out, nil
}

// LatestReconcile returns the newest finished reconciliation and its drift per (sink, target).
func (s *Store) LatestReconcile(ctx context.Context) (run billing.ReconcileRun, drift []billing.TargetDrift, ok bool, err error) {
	err = latestReconcileQuery().Each(ctx, s.Conn, s.DB, func(r schema.Row) error {
		var kind string
		var repair uint8
		if err := r.Scan(&run.RunID, &kind, &run.StartedAt, &run.FinishedAt, &run.From, &run.To,
			&run.Compared, &run.Drifting, &run.Unsettled, &run.DriftUnits, &repair); err != nil {
			return err
		}
		run.Trigger, run.Repair, ok = billing.ReconcileTrigger(kind), repair == 1, true
		run.StartedAt, run.FinishedAt, run.From, run.To = run.StartedAt.UTC(), run.FinishedAt.UTC(), run.From.UTC(), run.To.UTC()
		return nil
	})
	if err != nil {
		return run, nil, false, fmt.Errorf("latest reconcile: %w", err)
	}
	if !ok {
		return run, nil, false, nil
	}
	drift, err = s.driftByTarget(ctx, run.RunID)
	return run, drift, err == nil, err
}

// driftByTarget sums one run's drift rows per (sink, target).
func (s *Store) driftByTarget(ctx context.Context, runID string) ([]billing.TargetDrift, error) {
	out, err := schema.All(ctx, driftByTargetQuery(runID), s.Conn, s.DB, func(r schema.Row) (d billing.TargetDrift, err error) {
		var sink string
		err = r.Scan(&sink, &d.Target, &d.Values, &d.Units)
		d.Sink = billing.SinkKind(sink)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("drift of run %s by target: %w", runID, err)
	}
	return out, nil
}
