package billing

import (
	"context"
	"time"
)

// SinkKind says how a value reaches Stripe; it is stored in the billing tables' sink column.
type SinkKind string

const (
	// SinkMeter sends one pre-aggregated hourly meter event per customer and hour.
	SinkMeter SinkKind = "meter"
	// SinkUsageRecord sets a legacy metered price's quantity at the hour's timestamp.
	SinkUsageRecord SinkKind = "usage_record"
)

// Valid reports whether k is one of the sinks the tables can hold.
func (k SinkKind) Valid() bool { return k == SinkMeter || k == SinkUsageRecord }

// LedgerStatus is the step a ledger row records, as stored in billing_ledger.status.
type LedgerStatus string

const (
	LedgerIntent LedgerStatus = "intent" // written before the request leaves
	LedgerPushed LedgerStatus = "pushed" // Stripe confirmed the value
	LedgerFailed LedgerStatus = "failed" // Stripe refused the value (or stored a 5xx for its key)
	LedgerLate   LedgerStatus = "late"   // Stripe can no longer take the hour: a late adjustment
	// LedgerUnsendable: the value has nowhere to go in Stripe (the customer has no subscription
	// item on the legacy price). It is held, not retried into new revisions, until the sink
	// finds somewhere to send it (docs/billing.md, "Values that cannot be sent").
	LedgerUnsendable LedgerStatus = "unsendable"
)

// LateReason says why Stripe can no longer take an hour, as stored in
// billing_late_adjustments.reason.
type LateReason string

const (
	LateFinalized LateReason = "finalized" // the hour's invoice is final
	LateTooOld    LateReason = "too_old"   // older than the 35 days meter events accept
)

// LedgerRow is one step of one (customer, target, hour, sink) in the ledger.
type LedgerRow struct {
	CustomerID string
	// Target is the meter's event_name (SinkMeter) or the legacy price id (SinkUsageRecord).
	Target string
	Hour   time.Time
	Sink   SinkKind
	Metric string
	// Value is the billing units of this revision; ConfirmedValue what Stripe last confirmed.
	Value, ConfirmedValue int64
	Revision              uint32
	Identifier            string
	Status                LedgerStatus
	StripeID, RequestID   string
	HTTPStatus            uint16
	RecordedAt            time.Time
	RunID                 string
	// Version is 2×Revision for an intent, 2×Revision+1 for its outcome.
	Version uint64
	// Accounted is what Stripe plus recorded late adjustments account for after this step: the
	// value of the key's newest pushed or late row (0 if none). Every row carries it forward
	// (stored as accounted_value): the ledger is a ReplacingMergeTree, whose merges drop older
	// rows at any moment, so it cannot be read from them. It is the base of a later late
	// adjustment even when an intent or failure follows that row.
	Accounted int64
}

// key returns the row's key.
func (r LedgerRow) key() Key {
	return Key{CustomerID: r.CustomerID, Target: r.Target, Sink: r.Sink, Hour: r.Hour.UTC()}
}

// HourlyUsage is the raw usage of one project, metric and hour (usage_hourly's value).
type HourlyUsage struct {
	ProjectID string
	Metric    string
	Hour      time.Time
	Value     uint64
}

// LateAdjustment is a revision Stripe can no longer take, for finance to settle by hand.
type LateAdjustment struct {
	CustomerID, Target string
	Hour               time.Time
	Sink               SinkKind
	Revision           uint32
	Metric             string
	PeriodStart        time.Time
	PeriodEnd          time.Time
	// OldValue is what Stripe (plus earlier adjustments) holds, NewValue what it should;
	// Amount = NewValue − OldValue, in billing units.
	OldValue, NewValue, Amount int64
	Reason                     LateReason
	DetectedAt                 time.Time
	RunID                      string
}

// Drift is one bucket where Stripe's value differs from what ClickHouse says it should hold.
type Drift struct {
	CheckedAt          time.Time
	RunID              string
	CustomerID, Target string
	Sink               SinkKind
	// Bucket is the hour (meters) or the billing period's start (usage records).
	Bucket           time.Time
	Expected, Actual int64
	Drift            int64
}

// ReconcileTrigger says what started a reconciliation, as stored in billing_reconcile_runs.kind.
type ReconcileTrigger string

const (
	TriggerSchedule ReconcileTrigger = "schedule" // serve's nightly run (NEONMETER_BILLING_RECONCILE_SCHEDULE)
	TriggerGrace    ReconcileTrigger = "grace"    // serve's run before a period's invoice grace ends
	TriggerCLI      ReconcileTrigger = "cli"      // neonmeter billing reconcile
)

// ReconcileRun is the record of one reconciliation: billing_reconcile_runs. Its drifting
// buckets are billing_drift rows with the same run id.
type ReconcileRun struct {
	RunID                 string
	Trigger               ReconcileTrigger
	StartedAt, FinishedAt time.Time
	// From and To bound the hours compared.
	From, To time.Time
	// Compared, Drifting and Unsettled count buckets (see ReconcileResult).
	Compared, Drifting, Unsettled uint32
	// DriftUnits is the sum of |drift| in billing units, as a float: it cannot wrap.
	DriftUnits float64
	Repair     bool
	// Error is empty for a run that finished.
	Error string
}

// TargetDrift sums one run's drift of one (sink, target): a meter or a legacy price.
type TargetDrift struct {
	Sink   SinkKind
	Target string
	Values uint64
	Units  float64
}

// Store is the storage billing needs: raw usage from usage_hourly, and its own ledger, late
// adjustments and drift. billing/chstore implements it on ClickHouse.
type Store interface {
	// Usage returns the raw hourly usage of metrics in [from, to), one row per (project,
	// metric, hour) with a non-zero value, ordered by project, metric and hour.
	Usage(ctx context.Context, metrics []string, from, to time.Time) ([]HourlyUsage, error)
	// UsageTotals returns, per (project, metric), the non-zero sum of raw usage over [from,
	// to), each row at hour from: a stretch of a period in one row per project and metric.
	UsageTotals(ctx context.Context, metrics []string, from, to time.Time) ([]HourlyUsage, error)
	// UsageOf is Usage for some projects only.
	UsageOf(ctx context.Context, metrics, projectIDs []string, from, to time.Time) ([]HourlyUsage, error)
	// Lagging returns the projects whose final hours end before to (the budgeted collector's
	// progress; an explicit sweep's watermark counts as final provisional before its end),
	// ordered by project.
	Lagging(ctx context.Context, to time.Time, provisional time.Duration) ([]Lagging, error)
	// Ledger returns the latest row of every (customer, target, hour, sink) with hour in
	// [from, to), ordered by key, with the Accounted it carries.
	Ledger(ctx context.Context, from, to time.Time) ([]LedgerRow, error)
	// InsertLedger writes rows in one batch; none writes nothing.
	InsertLedger(ctx context.Context, rows []LedgerRow) error
	// InsertLateAdjustments writes adjustments in one batch; none writes nothing.
	InsertLateAdjustments(ctx context.Context, adj []LateAdjustment) error
	// InsertDrift writes drift rows in one batch; none writes nothing.
	InsertDrift(ctx context.Context, rows []Drift) error
	// InsertReconcileRun records one reconciliation.
	InsertReconcileRun(ctx context.Context, run ReconcileRun) error
	// LastReconciles returns when the newest finished (error-free) reconciliation of each
	// trigger started; a trigger that never finished one is absent.
	LastReconciles(ctx context.Context) (map[ReconcileTrigger]time.Time, error)
	// LatestReconcile returns the newest finished reconciliation of any trigger and its drift
	// per (sink, target); ok is false when there is none.
	LatestReconcile(ctx context.Context) (run ReconcileRun, drift []TargetDrift, ok bool, err error)
}
