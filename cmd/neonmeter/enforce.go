package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
)

// EnforceCommand keeps projects inside their plans.
type EnforceCommand struct{ *Env }

func (c *EnforceCommand) Synopsis() string {
	return "keep projects inside their plans: enforce [--dry-run], explain PROJECT, release PROJECT, ack-breaker"
}

const enforceUsage = `Usage:
  neonmeter enforce [--dry-run]
  neonmeter enforce explain PROJECT
  neonmeter enforce release PROJECT
  neonmeter enforce ack-breaker

Runs one enforcement cycle: judges every project's period-to-date usage (calendar month, UTC)
against its plan, reads Neon only for projects whose target changed, and prints the planned
actions as a table. Hard limits suspend (Neon quota), soft limits throttle (max CU down to the
plan's floor), none only alerts; quotas and default compute settings are kept at what the plan
allows. Nothing changes in Neon unless NEONMETER_ENFORCEMENT_MODE=enforce and --dry-run is absent.

  explain  Says why a project is where it is: usage, limits, level, target, actions, audit.
  release  Lifts enforcement from a project until the period ends (recorded and audited).
  ack-breaker
           Lets enforcement resume after the circuit breaker tripped: until then no project is
           newly suspended or throttled (NEONMETER_ENFORCEMENT_BREAKER_LATCH). Check the
           dry-run table first: a trip is most often bad data.

Exit codes: 0 done, 1 the work failed (a project failed, listed), 2 bad usage or configuration.

Flags:`

func (c *EnforceCommand) Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "ack-breaker" {
		return c.ackBreaker(ctx, args[1:])
	}
	if len(args) > 0 && (args[0] == "explain" || args[0] == "release") {
		return c.project(ctx, args[0], args[1:])
	}
	fs := c.flagSet("")
	dryRun := fs.Bool("dry-run", false, "plan and print without changing Neon, whatever NEONMETER_ENFORCEMENT_MODE says")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the enforcement lease instead of refusing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	// A dry run takes the lease too: it records state and audit rows.
	return c.withReconciler(ctx, *dryRun, true, func(r *enforcement.Reconciler, leases *jobLeases) error {
		var rep *enforcement.Report
		err := leases.command(ctx, jobEnforcement, *wait, func(ctx context.Context) (err error) {
			rep, err = r.Cycle(ctx, enforcement.CycleOptions{DryRun: *dryRun})
			return err
		})
		if rep != nil {
			printPlan(c.Stdout, rep)
		}
		return err
	})
}

// project runs enforce explain PROJECT (reads only) or enforce release PROJECT.
func (c *EnforceCommand) project(ctx context.Context, verb string, args []string) error {
	fs := c.flagSet(verb)
	wait := new(bool)
	if verb == "release" {
		wait = fs.Bool("wait", false, "wait while another neonmeter holds the enforcement lease instead of refusing")
	}
	if err := c.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("enforce %s takes exactly one project id", verb)
	}
	id := fs.Arg(0)
	return c.withReconciler(ctx, false, verb == "release", func(r *enforcement.Reconciler, leases *jobLeases) error {
		if verb == "explain" {
			x, err := r.Explain(ctx, id)
			if err != nil {
				return err
			}
			printExplanation(c.Stdout, x)
			return nil
		}
		var rep *enforcement.Report
		err := leases.command(ctx, jobEnforcement, *wait, func(ctx context.Context) (err error) {
			rep, err = r.Release(ctx, id)
			return err
		})
		if rep != nil {
			fmt.Fprintf(c.Stdout, "released %s until the period ends (mode %s)\n", id, rep.Mode)
			printPlan(c.Stdout, rep)
		}
		return err
	})
}

func (c *EnforceCommand) flagSet(sub string) *flag.FlagSet {
	return newFlags(strings.TrimSpace("enforce "+sub), enforceUsage)
}

// policyFromConfig turns NEONMETER_ENFORCEMENT_* into a policy.
func policyFromConfig(cfg Config) enforcement.Policy {
	never := map[string]bool{}
	for _, id := range cfg.EnforceNever {
		if id = strings.TrimSpace(id); id != "" {
			never[id] = true
		}
	}
	return enforcement.Policy{Mode: enforcement.Mode(cfg.EnforceMode), NeverSuspend: never, Grace: cfg.EnforceGrace,
		HysteresisPercent: cfg.EnforceHyster, StaleAfter: cfg.EnforceStale, MaxActions: cfg.EnforceMaxActs,
		MaxPercent: cfg.EnforcePercent, BreakerLatch: cfg.EnforceLatch, ThrottleIdle: cfg.EnforceWakeIdle, DriftReads: cfg.EnforceDrift,
		MaxReads: cfg.EnforceMaxReads}
}

// ackBreaker acknowledges a tripped circuit breaker (recorded in enforcement_breaker).
func (c *EnforceCommand) ackBreaker(ctx context.Context, args []string) error {
	fs := c.flagSet("ack-breaker")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the enforcement lease instead of refusing")
	if err := c.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("enforce ack-breaker takes no arguments")
	}
	var (
		trip enforcement.BreakerEvent
		ok   bool
	)
	err := c.withReconciler(ctx, false, true, func(r *enforcement.Reconciler, leases *jobLeases) error {
		return leases.command(ctx, jobEnforcement, *wait, func(ctx context.Context) (err error) {
			trip, ok, err = r.AckBreaker(ctx)
			return err
		})
	})
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(c.Stdout, "the circuit breaker is not tripped: nothing to acknowledge")
		return nil
	}
	fmt.Fprintf(c.Stdout, "acknowledged the circuit breaker tripped at %s by cycle %s (%d projects to newly enforce, cap %d); the next cycle enforces again, at most the cap, the most over first\n",
		trip.At.Format(time.RFC3339), trip.CycleID, trip.Enforcing, trip.Cap)
	return nil
}

// withReconciler runs work with a reconciler wired from the configuration; dryRun forces the
// dry-run mode (Neon is still read). With writes, its mutations and writes are fenced by the
// enforcement lease that leases takes; without, it only reads.
func (c *EnforceCommand) withReconciler(ctx context.Context, dryRun, writes bool, work func(r *enforcement.Reconciler, leases *jobLeases) error) error {
	return c.withDeps(useNeonKey|useClickHousePass, func(d *deps) error {
		pol := policyFromConfig(d.cfg)
		if dryRun {
			pol.Mode = enforcement.ModeDryRun
		}
		r, err := d.Enforcer(ctx, pol, nil, writes)
		if err != nil {
			return err
		}
		return work(r, d.leases)
	})
}

// printPlan writes the cycle's projects and actions as a table.
func printPlan(w io.Writer, rep *enforcement.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tPLAN\tLEVEL\tSTATUS\tMETRIC\tUSAGE\tLIMIT\tACTION\tREASON\tCHANGE\tHELD")
	for _, r := range rep.Rows {
		held := r.Held
		if held == "" {
			held = "-"
		}
		metric := r.Metric
		if metric == "" {
			metric = "-"
		}
		if len(r.Actions) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t-\t-\t-\t%s\n", r.ProjectID, r.Plan, r.Level, r.Status, metric, r.Usage, r.Limit, held)
		}
		for _, a := range r.Actions {
			act := string(a.Kind)
			if a.EndpointID != "" {
				act += " " + a.EndpointID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s -> %s\t%s\n", r.ProjectID, r.Plan, r.Level, r.Status, metric, r.Usage, r.Limit,
				act, a.Reason, a.Before, a.After, held)
		}
	}
	_ = tw.Flush()
	planned := 0
	for _, r := range rep.Rows {
		planned += len(r.Actions)
	}
	fmt.Fprintf(w, "\nenforce (%s): %d projects, %d read from Neon, %d action(s) planned, %d mutation(s) made, %d failure(s)",
		rep.Mode, rep.Fleet, rep.Reads, planned, rep.Mutations, rep.Failures)
	if rep.Rechecked > 0 {
		fmt.Fprintf(w, ", %d suspended, throttled or waiting re-checked in %d call(s)", rep.Rechecked, rep.RecheckCalls)
	}
	fmt.Fprintf(w, "; Neon calls: %d list page(s), %d project GET(s), %d endpoint list(s)", rep.ListCalls, rep.GetCalls, rep.EndpointCalls)
	if rep.Gone > 0 {
		fmt.Fprintf(w, ", %d gone from Neon (skipped)", rep.Gone)
	}
	if rep.IdleOverMax > 0 {
		fmt.Fprintf(w, ", %d idle compute(s) above their plan's max CU (left until seen running)", rep.IdleOverMax)
	}
	switch {
	case rep.BreakerLatched:
		fmt.Fprintf(w, "; CIRCUIT BREAKER TRIPPED since %s: %d projects would be suspended or throttled, none is until `neonmeter enforce ack-breaker`",
			rep.BreakerTrippedAt.Format(time.RFC3339), rep.Enforcing)
	case rep.BreakerTripped:
		fmt.Fprintf(w, "; CIRCUIT BREAKER TRIPPED: %d projects would be suspended or throttled, at most %d acted on (the most over first)", rep.Enforcing, rep.BreakerCap)
	}
	fmt.Fprintln(w)
}

func printExplanation(w io.Writer, x *enforcement.Explanation) {
	d, v := x.Desired, x.Verdict
	fmt.Fprintf(w, "project %s (org %s), plan %s, period from %s, collector data fresh: %v\n", d.ProjectID, orDash(d.OrgID), orDash(v.Plan),
		d.PeriodStart.Format(time.RFC3339), d.Fresh)
	fmt.Fprintf(w, "level %s, status %s", v.Level, v.Target.Status)
	if v.Held != "" {
		fmt.Fprintf(w, " (held back: %s)", v.Held)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tKIND\tUSAGE\tLIMIT\tPERCENT\tLEVEL")
	for _, f := range v.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%s\n", f.Metric, f.Kind, f.Usage, f.Limit, 100*float64(f.Usage)/float64(f.Limit), f.Level)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "target: %s\n", v.Target.Fingerprint())
	if p := v.Next.Prior; p != "" {
		fmt.Fprintf(w, "before enforcement (given back on restore and release): %s\n", p)
	}
	if x.ObserveError != "" {
		fmt.Fprintf(w, "neon: could not read: %s\n", x.ObserveError)
	} else {
		fmt.Fprintf(w, "neon: quota %+v, defaults %+v, %d endpoint(s)\n", x.Observed.Quota, x.Observed.Defaults, len(x.Observed.Endpoints))
	}
	if len(x.Actions) == 0 {
		fmt.Fprintln(w, "next cycle: nothing to do")
	}
	for _, a := range x.Actions {
		fmt.Fprintf(w, "next cycle: %s\n", a)
	}
	if x.Pending {
		fmt.Fprintln(w, "endpoint changes wait until the compute is active (patching an idle compute would wake it)")
	}
	fmt.Fprintln(w, "\naudit (newest first):")
	for _, a := range x.Audit {
		fmt.Fprintf(w, "  %s %s %s %s %s level=%s usage=%d limit=%d %s -> %s ops=%v %s\n", a.At.Format(time.RFC3339), a.Mode, a.Action, a.Reason,
			a.Outcome, a.Level, a.Usage, a.Limit, a.Before, a.After, a.OperationIDs, a.Error)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
