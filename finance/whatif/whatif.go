// Package whatif re-rates a past plan period's real usage under a draft plan catalog: the units
// billing would have pushed and the projects enforcement would have warned, throttled or
// suspended, side by side with what billing's ledger and enforcement's audit say happened. It
// only reads: its storage interfaces have no write method, and it never talks to Stripe or Neon.
// The decisions are billing's and enforcement's own pure functions (billing.Desired,
// enforcement.Evaluate); this package only feeds them and compares.
package whatif

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/plans"
)

// BillingReads is the part of billing's store a simulation uses: usage reads and the ledger.
// billing/chstore implements it.
type BillingReads interface {
	UsageTotals(ctx context.Context, metrics []string, from, to time.Time) ([]billing.HourlyUsage, error)
	UsageOf(ctx context.Context, metrics, projectIDs []string, from, to time.Time) ([]billing.HourlyUsage, error)
	Ledger(ctx context.Context, from, to time.Time) ([]billing.LedgerRow, error)
}

// EnforcementReads is the part of enforcement's store a simulation uses: the period's usage per
// project and metric in one pass. enforcement/chstore implements it.
type EnforcementReads interface {
	UsageSince(ctx context.Context, from, to time.Time, fn func(enforcement.PeriodUsage)) error
}

// Outcome is what enforcement actually did to one project in the period, from its audit.
type Outcome struct {
	ProjectID string
	// Level is the worst level audited in the period.
	Level                enforcement.Level
	Throttled, Suspended bool
}

// OutcomeReads returns enforcement's actual outcomes of a period; finance/whatif/chstore
// implements it over enforcement_audit.
type OutcomeReads interface {
	Outcomes(ctx context.Context, from, to time.Time) ([]Outcome, error)
}

// AccountReads is the part of accounts' store a simulation uses.
type AccountReads interface {
	History(ctx context.Context, projectIDs []string, to time.Time) ([]accounts.Record, error)
}

// Config is what Simulate reads and which catalogs it compares.
type Config struct {
	Billing     BillingReads
	Enforcement EnforcementReads
	Outcomes    OutcomeReads
	Accounts    AccountReads
	// Current is the catalog in force (NEONMETER_PLANS_FILE); Draft the one simulated.
	Current, Draft *plans.Catalog
	DefaultPlan    string
	// Policy is enforcement's; its NeverSuspend list and hysteresis apply. Grace is taken as 0:
	// over a limit at the period's end means enforced within the period.
	Policy enforcement.Policy
	// Money adds revenue, Neon's cost and margin; nil: units and enforcement only.
	Money *Money
}

// Simulate re-rates the plan period holding period (any instant in it) under cfg.Draft.
func Simulate(ctx context.Context, cfg Config, period time.Time) (*Report, error) {
	if cfg.Current == nil || cfg.Draft == nil {
		return nil, errors.New("what-if: a current and a draft catalog are required")
	}
	from := plans.PeriodStart(period)
	to := plans.PeriodEnd(period)
	in, err := read(ctx, cfg, from, to)
	if err != nil {
		return nil, fmt.Errorf("what-if %s: %w", from.Format("2006-01"), err)
	}
	rep, err := Compare(in, cfg.Draft, cfg.Policy, cfg.Money)
	if err != nil {
		return nil, fmt.Errorf("what-if %s: %w", from.Format("2006-01"), err)
	}
	return rep, nil
}

// Inputs is everything a comparison needs, read from storage.
type Inputs struct {
	From, To time.Time
	// Usage is billing's view of the period: one row per project and metric at From for a
	// project whose owner and plan did not change, hour by hour for the others.
	Usage    []billing.HourlyUsage
	Ledger   []billing.LedgerRow
	Periods  []enforcement.PeriodUsage
	Outcomes []Outcome
	Timeline *accounts.Timelines
	// Units names each metric's billing unit under the current catalog, for the report.
	CurrentUnits map[string]string
}

// read loads the period through the same reads billing and enforcement use. The reads that do
// not depend on each other run at once: at fleet scale each waits mostly on ClickHouse.
func read(ctx context.Context, cfg Config, from, to time.Time) (*Inputs, error) {
	in := &Inputs{From: from, To: to, CurrentUnits: unitsOf(cfg.Current)}
	metrics := plans.BilledMetrics(cfg.Current, cfg.Draft)
	var sums []billing.HourlyUsage
	err := parallel(ctx,
		func(ctx context.Context) (err error) {
			sums, err = cfg.Billing.UsageTotals(ctx, metrics, from, to)
			return err
		},
		func(ctx context.Context) error {
			return cfg.Enforcement.UsageSince(ctx, from, to, func(u enforcement.PeriodUsage) { in.Periods = append(in.Periods, u) })
		},
		func(ctx context.Context) error {
			// Every project's history in one read: a fleet-wide simulation needs nearly all.
			h, err := cfg.Accounts.History(ctx, nil, to)
			if err != nil {
				return fmt.Errorf("accounts: %w", err)
			}
			in.Timeline = accounts.NewTimelines(h, cfg.DefaultPlan)
			if in.Ledger, err = cfg.Billing.Ledger(ctx, from, to); err != nil {
				return err
			}
			in.Outcomes, err = cfg.Outcomes.Outcomes(ctx, from, to)
			return err
		})
	if err != nil {
		return nil, err
	}
	constant, changing := billing.SplitBeforeWindow(sums, in.Timeline, from, to)
	in.Usage = constant
	if len(changing) > 0 {
		hourly, err := cfg.Billing.UsageOf(ctx, metrics, changing, from, to)
		if err != nil {
			return nil, err
		}
		in.Usage = append(in.Usage, hourly...)
	}
	return in, nil
}

// parallel runs fns at once and returns the first error; the others are cancelled then.
func parallel(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errs <- fn(ctx) }()
	}
	var first error
	for range fns {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// unitsOf names each billed metric's unit, the first plan's that bills it.
func unitsOf(c *plans.Catalog) map[string]string {
	out := map[string]string{}
	for _, p := range c.Plans {
		for m, b := range p.Billing {
			if _, ok := out[m]; !ok {
				out[m] = b.Unit
			}
		}
	}
	return out
}
