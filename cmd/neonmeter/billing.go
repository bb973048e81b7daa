package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/billing"
)

// BillingCommand pushes usage to Stripe and reconciles it.
type BillingCommand struct{ *Env }

func (c *BillingCommand) Synopsis() string {
	return "push usage to Stripe: setup, push, reconcile"
}

const billingUsage = `Usage:
  neonmeter billing setup (--dry-run | --apply)
  neonmeter billing push [--dry-run] [--wait]
  neonmeter billing reconcile --from TIME --to TIME [--repair] [--wait]

Bills hourly usage through Stripe (NEONMETER_STRIPE_API_KEY), exactly once per value; see
docs/billing.md.

  setup      Creates the Billing Meters the plan catalog names (hourly pre-aggregated, sum),
             only those missing. --dry-run lists what it would create.
  push       One cycle: computes each customer's hourly values outside the provisional window,
             records intents, sends what changed, records outcomes and late adjustments.
             --dry-run prints the table of what would be sent.
  reconcile  Compares Stripe's meter event summaries (per hour) and usage record summaries
             (per period) with ClickHouse, stores and prints the drift; --repair re-sends the
             drifting values.

push (but --dry-run) and reconcile take the billing lease: one at a time, serve's included. While
another neonmeter holds it they refuse, naming the holder (exit 1), or wait for it with --wait.

Exit codes: 0 done (reconcile: no drift), 1 the work failed or drift was found, 2 bad usage or
configuration.`

func (c *BillingCommand) Run(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "billing", billingUsage, args, subcommand{"setup", c.setup}, subcommand{"push", c.push}, subcommand{"reconcile", c.reconcile})
}

func (c *BillingCommand) flags(name, usage string) *flag.FlagSet {
	return newFlags("billing "+name, usage)
}

func (c *BillingCommand) setup(ctx context.Context, args []string) error {
	fs := c.flags("setup", "Usage: neonmeter billing setup (--dry-run | --apply)\n\nFlags:")
	dryRun := fs.Bool("dry-run", false, "list the meters that would be created")
	apply := fs.Bool("apply", false, "create the missing meters")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *dryRun == *apply {
		return usagef("give exactly one of --dry-run and --apply")
	}
	return c.withDeps(useStripeKey|useClickHousePass, func(d *deps) error {
		cat, err := d.Catalog()
		if err != nil {
			return err
		}
		sc, err := d.Stripe()
		if err != nil {
			return err
		}
		res, err := billing.Setup(ctx, sc, cat, *apply)
		printMeters(c.Stdout, res)
		return err
	})
}

// printMeters writes what setup found, created or would create.
func printMeters(w io.Writer, res []billing.MeterSetup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT_NAME\tMETER\tACTION")
	for _, m := range res {
		action := "exists"
		switch {
		case m.Created:
			action = "created"
		case m.MeterID == "":
			action, m.MeterID = "would create", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.EventName, m.MeterID, action)
	}
	_ = tw.Flush()
}

// withPusher runs work with the pusher, fenced by the billing lease that leases takes.
func (c *BillingCommand) withPusher(ctx context.Context, work func(p *billing.Pusher, leases *jobLeases) error) error {
	return c.withDeps(useStripeKey|useClickHousePass, func(d *deps) error {
		p, err := d.Pusher(ctx, nil, 0)
		if err != nil {
			return err
		}
		return work(p, d.leases)
	})
}

func (c *BillingCommand) push(ctx context.Context, args []string) error {
	fs := c.flags("push", "Usage: neonmeter billing push [--dry-run] [--wait]\n\nFlags:")
	dryRun := fs.Bool("dry-run", false, "print what would be sent; send and record nothing")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the billing lease instead of refusing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	return c.withPusher(ctx, func(p *billing.Pusher, leases *jobLeases) error {
		var res billing.Result
		err := leases.commandIf(ctx, !*dryRun, jobBilling, *wait, func(ctx context.Context) (err error) {
			res, err = p.Push(ctx, *dryRun)
			return err
		})
		if refused(err) {
			return err
		}
		return c.printPush(res, *dryRun, err)
	})
}

// printPush writes a push's outcome (a dry run's actions first); values left pending or refused
// fail the command when the push itself did not.
func (c *BillingCommand) printPush(res billing.Result, dryRun bool, err error) error {
	if dryRun {
		printActions(c.Stdout, res.Actions)
	}
	fmt.Fprintf(c.Stdout, "billing push: hours %s – %s: %d value(s) to act on, %d request(s), %d confirmed, %d late adjustment(s), %d pending, %d refused, %d held\n",
		res.From.Format(time.RFC3339), res.To.Format(time.RFC3339), len(res.Actions), res.Requests, res.Pushed, len(res.Late), res.Pending, res.Failed, res.Unsendable)
	if res.Unsendable > 0 {
		// Held values do not fail the command (they would fail every run until someone acts);
		// the alert NeonmeterBillingUnsendable watches them.
		fmt.Fprintf(c.Stdout, "%d value(s) held: their customer has no subscription item on the legacy price (billing_ledger status unsendable); they are sent once the subscription has one\n", res.Unsendable)
	}
	if err == nil && (res.Pending > 0 || res.Failed > 0) {
		err = fmt.Errorf("%d value(s) left pending and %d refused by Stripe (see the log)", res.Pending, res.Failed)
	}
	return err
}

func printActions(w io.Writer, actions []billing.Action) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CUSTOMER\tSINK\tTARGET\tHOUR\tVALUE\tREVISION\tACTION\tIDENTIFIER")
	for _, a := range actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.CustomerID, a.Sink, a.Target, a.Hour.Format(time.RFC3339), a.Units, a.Revision, a.Kind, a.Identifier)
	}
	_ = tw.Flush()
}

func (c *BillingCommand) reconcile(ctx context.Context, args []string) error {
	fs := c.flags("reconcile", "Usage: neonmeter billing reconcile --from TIME --to TIME [--repair] [--wait]\n\nTimes are RFC 3339 or dates (UTC).\n\nFlags:")
	fromS := fs.String("from", "", "start of the hours compared (inclusive)")
	toS := fs.String("to", "", "end of the hours compared (exclusive)")
	repair := fs.Bool("repair", false, "re-send the drifting values")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the billing lease instead of refusing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	from, err1 := parseWhen(*fromS)
	to, err2 := parseWhen(*toS)
	if err := errors.Join(err1, err2); err != nil {
		return usageError{err}
	}
	// Every reconcile takes the billing lease: a push running meanwhile would show as drift,
	// and the rows it records are billing's.
	var res billing.ReconcileResult
	err := c.withPusher(ctx, func(p *billing.Pusher, leases *jobLeases) error {
		return leases.command(ctx, jobBilling, *wait, func(ctx context.Context) (err error) {
			res, err = p.Reconcile(ctx, from, to, *repair)
			return err
		})
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CUSTOMER\tSINK\tTARGET\tBUCKET\tCLICKHOUSE\tSTRIPE\tDRIFT")
	for _, b := range res.Drift {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%+d\n", b.CustomerID, b.Sink, b.Target, b.Start.Format(time.RFC3339), b.Expected, b.Actual, b.Drift())
	}
	_ = tw.Flush()
	fmt.Fprintf(c.Stdout, "billing reconcile %s: %d bucket(s) compared, %d drifting, %d meter hour(s) pushed too recently to compare\n", res.RunID, res.Compared, len(res.Drift), res.Unsettled)
	if res.Repair != nil {
		fmt.Fprintf(c.Stdout, "repair: %d request(s), %d confirmed, %d pending\n", res.Repair.Requests, res.Repair.Pushed, res.Repair.Pending)
	}
	if len(res.Drift) > 0 && !*repair {
		return fmt.Errorf("%d bucket(s) drift from ClickHouse (run with --repair to re-send)", len(res.Drift))
	}
	return nil
}

// reconcileStep is serve's scheduled reconciliation (NEONMETER_BILLING_RECONCILE_SCHEDULE, and
// before each period's invoice grace ends). The pre-grace window lasts at least one cycle of
// NEONMETER_COLLECT_SCHEDULE, so some cycle falls inside it.
func reconcileStep(cfg Config, p *billing.Pusher) (func(context.Context) error, error) {
	nightly, err := cron.ParseStandard(cfg.BillingReconcile)
	if err != nil {
		return nil, usagef("%s_BILLING_RECONCILE_SCHEDULE %q: %v", envPrefix, cfg.BillingReconcile, err)
	}
	collect, err := cron.ParseStandard(cfg.CollectSchedule)
	if err != nil {
		return nil, usagef("%s_COLLECT_SCHEDULE %q: %v", envPrefix, cfg.CollectSchedule, err)
	}
	s := billing.ReconcileSchedule{Nightly: nightly, Lead: max(time.Hour, cycleInterval(collect, time.Now()))}
	return func(ctx context.Context) error {
		_, err := p.ReconcileScheduled(ctx, s)
		return err
	}, nil
}

// cycleInterval is the longest gap between the schedule's firings over the next two days.
func cycleInterval(s cron.Schedule, now time.Time) time.Duration {
	var longest time.Duration
	for t := s.Next(now.UTC()); t.Before(now.Add(48 * time.Hour)); {
		next := s.Next(t)
		longest = max(longest, next.Sub(t))
		t = next
	}
	return longest
}

// parseWhen reads an RFC 3339 time or a date (midnight UTC).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("--from and --to are required")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a date", s)
	}
	return t, nil
}
