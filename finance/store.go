package finance

import (
	"context"
	"time"
)

// Store is what finance reads (and the cost table it loads) in ClickHouse; finance/chstore
// implements it. customer "" means every customer (unowned projects appear with customer "").
// Ranges are [from, to) of UTC hours.
type Store interface {
	// LoadCosts writes the cost table as one load at instant at (neon_unit_costs,
	// plan_unit_prices); the prices of defaultPlan are written for plan "" too.
	LoadCosts(ctx context.Context, c *Costs, defaultPlan string, at time.Time) error
	// Margin returns, per customer, plan, month and metric, the raw usage (plan in force by the
	// hour rule) with Neon's cost and the plan's revenue from the newest loaded cost table.
	Margin(ctx context.Context, customer string, from, to time.Time) ([]MarginRow, error)
	// Hourly returns the customer's raw usage per metric and hour, summed over its projects.
	Hourly(ctx context.Context, customer string, from, to time.Time) ([]HourRow, error)
	// Projects returns the account history of every project the customer ever owned, up to to.
	Projects(ctx context.Context, customer string, to time.Time) ([]ProjectRow, error)
	// Billed returns the ledger's newest values summed per customer, target and sink.
	Billed(ctx context.Context, customer string, from, to time.Time) ([]BilledRow, error)
	// Drift returns the rows of the newest reconcile run that found drift in the range.
	Drift(ctx context.Context, customer string, from, to time.Time) ([]DriftRow, error)
	// Late returns the late adjustments of hours in the range.
	Late(ctx context.Context, customer string, from, to time.Time) ([]LateRow, error)
	// Actions returns enforcement's audit rows of the customer's projects in the range.
	Actions(ctx context.Context, customer string, from, to time.Time) ([]ActionRow, error)
}

// MarginRow is one (customer, plan, month, metric): amounts in micro-units of the currency.
// Plan "" is the default plan (the report names it). A metric Neon's table does not price costs
// 0; a metric the plan does not price (or bill) earns 0, so a free plan is pure cost.
type MarginRow struct {
	CustomerID, Plan, Metric string
	Month                    time.Time
	Raw                      uint64
	CostMicros               int64
	// Target and Units are what the plan bills the month's usage as (empty and 0 when it
	// bills nothing); RevenueMicros = Units × the plan's price.
	Target        string
	Units         int64
	RevenueMicros int64
}

// MarginMicros is revenue − cost.
func (r MarginRow) MarginMicros() int64 { return r.RevenueMicros - r.CostMicros }

// HourRow is raw usage of one metric in one hour.
type HourRow struct {
	Metric string
	Hour   time.Time
	Raw    uint64
}

// ProjectRow is one account_history record: from ValidFrom on, the project belongs to
// CustomerID on Plan ("" customer: nobody; "" plan: the default).
type ProjectRow struct {
	ProjectID  string
	ValidFrom  time.Time
	CustomerID string
	Plan       string
}

// BilledRow is the ledger's newest value per hour, summed: Value is what billing wants Stripe to
// hold, Confirmed what Stripe confirmed.
type BilledRow struct {
	CustomerID, Target, Sink, Metric string
	Hours                            int64
	Value, Confirmed                 int64
}

// DriftRow is one difference a reconcile found (Drift = Actual − Expected).
type DriftRow struct {
	RunID                    string
	CheckedAt                time.Time
	CustomerID, Target, Sink string
	Bucket                   time.Time
	Expected, Actual, Drift  int64
}

// LateRow is a revision Stripe could no longer take.
type LateRow struct {
	CustomerID, Target, Sink, Metric, Reason string
	Hour, DetectedAt                         time.Time
	OldValue, NewValue, Amount               int64
}

// ActionRow is one enforcement decision or Neon action.
type ActionRow struct {
	At                                                    time.Time
	ProjectID, Plan, Metric, Level, Action, Mode, Outcome string
	Usage, Limit                                          uint64
}
