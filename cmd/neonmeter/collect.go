package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// CollectCommand runs one budgeted collection cycle, or one sweep of an explicit window.
type CollectCommand struct{ *Env }

func (c *CollectCommand) Synopsis() string {
	return "collect hourly consumption into ClickHouse once (a budgeted cycle, or --last/--from/--to)"
}

const collectUsage = `Usage: neonmeter collect [--last 48h | --from T [--to T]]

Without flags, runs one budgeted cycle per Neon account and exits: it lists every project of
the account's orgs (NEONMETER_NEON_ORG_IDS, or NEONMETER_NEON_ORG_ID; the general bucket), then
spends the cycle's consumption budget — NEONMETER_NEON_CONSUMPTION_RATE calls a minute over the
shorter of NEONMETER_COLLECT_SCHEDULE's interval and NEONMETER_COLLECT_DEADLINE, retries
included — in priority order: the last hours of a billing period that just closed, projects
active since their last collected hour, projects enforcement holds at risk, then a rolling sweep
of every other project, oldest first, up to Neon's 168 hours a call. Progress is kept per
project (collection_progress); docs/collector.md explains the tiers and their freshness.

With --last, or --from [--to], reads that window for every project of each org (a full sweep,
⌈projects/100⌉ calls per org whatever the budget) and writes new or changed values, as an
operator's repair. Consumption calls never wake a compute.

Exit code 1 when a cycle or sweep failed; a re-run repairs it. An org listing far fewer projects
than its last successful run (NEONMETER_COLLECT_MIN_PROJECTS_RATIO) fails; --accept-project-drop
confirms the projects are really gone. On SIGINT or SIGTERM the work may finish within
NEONMETER_SHUTDOWN_TIMEOUT, then it is stopped (exit 1); a second signal exits at once.

Flags:`

func (c *CollectCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("collect", collectUsage)
	var from, to timeFlag
	last := fs.Duration("last", 0, "sweep the last `DURATION` of complete hours (e.g. 48h) instead of running a budgeted cycle")
	fs.Var(&from, "from", "sweep from this hour, RFC 3339 (rounded down to the hour)")
	fs.Var(&to, "to", "sweep window end, RFC 3339, exclusive (default: the last complete hour)")
	acceptDrop := fs.Bool("accept-project-drop", false, "collect although Neon lists far fewer projects than the last successful run saw (projects really deleted)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := checkCollectFlags(fs, *last, from.t, to.t); err != nil {
		return err
	}
	return c.withDeps(useNeonKey|useClickHousePass, func(d *deps) error {
		if _, err := d.NeonAccounts(); err != nil {
			return err
		}
		if _, err := d.Migrated(ctx); err != nil {
			return err
		}
		// A signal lets the work finish within NEONMETER_SHUTDOWN_TIMEOUT, then stops it
		// (recorded as stopped; exit 1, as it is not complete).
		work, stopWork := graceful(ctx, d.cfg.ShutdownTimeout)
		defer stopWork()
		if *last == 0 && from.t.IsZero() && to.t.IsZero() {
			return c.cycle(work, d, *acceptDrop)
		}
		w := collector.Window{From: from.t, To: to.t}
		if *last > 0 {
			now, _ := d.cfg.clock()
			end := now().UTC().Truncate(time.Hour)
			w = collector.Window{From: end.Add(-*last), To: end}
		}
		return c.sweep(work, d, w, *acceptDrop)
	})
}

// cycle runs one budgeted cycle per Neon account, the accounts at once (their budgets are
// separate), and prints each summary.
func (c *CollectCommand) cycle(ctx context.Context, d *deps, acceptDrop bool) error {
	fleets, err := d.Fleets(ctx, nil, func(fc *collector.FleetConfig) { fc.AcceptProjectDrop = acceptDrop })
	if err != nil {
		return err
	}
	sums, err := runFleets(ctx, fleets)
	for i, s := range sums {
		if i > 0 {
			fmt.Fprintln(c.Stdout)
		}
		printCycle(c.Stdout, s)
	}
	return err
}

// runFleets runs one cycle of every fleet at once: each Neon account has its own budget.
func runFleets(ctx context.Context, fleets []*collector.Fleet) ([]collector.CycleSummary, error) {
	sums := make([]collector.CycleSummary, len(fleets))
	errs := make([]error, len(fleets))
	var wg sync.WaitGroup
	for i, f := range fleets {
		// A panic would end the process past any recover of the caller's goroutine.
		wg.Go(func() {
			errs[i] = guarded(func() (err error) {
				sums[i], err = f.Cycle(ctx)
				return err
			})
		})
	}
	wg.Wait()
	return sums, errors.Join(errs...)
}

// lastRuns folds the org runs of a round of cycles into the one summary serve's /healthz
// reports: their run ids, the first outcome other than success, the stalest watermark.
func lastRuns(sums []collector.CycleSummary) collector.Summary {
	var out collector.Summary
	var ids []string
	out.Outcome = collector.OutcomeSuccess
	for _, c := range sums {
		for _, o := range c.Orgs {
			ids = append(ids, o.RunID)
			if o.Outcome != collector.OutcomeSuccess && out.Outcome == collector.OutcomeSuccess {
				out.Outcome = o.Outcome
			}
			if out.Watermark.IsZero() || (!o.Watermark.IsZero() && o.Watermark.Before(out.Watermark)) {
				out.Watermark = o.Watermark
			}
		}
	}
	out.RunID = strings.Join(ids, ",")
	return out
}

// sweep collects window w for every org, one org after the other, and prints each summary.
func (c *CollectCommand) sweep(ctx context.Context, d *deps, w collector.Window, acceptDrop bool) error {
	var errs []error
	for _, org := range d.cfg.orgs() {
		col, err := d.Collector(ctx, org.ID, nil, progressReporter(c.Stderr, d.log, 2*time.Second),
			func(cc *collector.Config) { cc.AcceptProjectDrop = acceptDrop })
		if err != nil {
			return err
		}
		sum, err := col.Sweep(ctx, w)
		if isTerminal(c.Stderr) {
			fmt.Fprintln(c.Stderr)
		}
		printSummary(c.Stdout, sum, d.wakeRisk())
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// checkCollectFlags refuses a window that cannot be meant: --last 0 (it used to mean "the
// watermark's window" silently), a negative --last, --last with --from/--to, and --to not after
// --from.
func checkCollectFlags(fs *flag.FlagSet, last time.Duration, from, to time.Time) error {
	lastSet := false
	fs.Visit(func(f *flag.Flag) { lastSet = lastSet || f.Name == "last" })
	switch {
	case lastSet && last < time.Hour:
		return usagef("--last must be at least 1h, got %s", last)
	case lastSet && (!from.IsZero() || !to.IsZero()):
		return usagef("--last excludes --from and --to")
	case !from.IsZero() && !to.IsZero() && !to.After(from):
		return usagef("--to (%s) must be after --from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return nil
}

// printSummary writes a sweep's summary as a two-column table.
func printSummary(w io.Writer, s collector.Summary, wakeRisk int64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("run", s.RunID)
	row("org", s.OrgID)
	row("endpoint", s.Endpoint)
	row("window", fmt.Sprintf("%s .. %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339)))
	row("outcome", s.Outcome)
	row("pages", s.Pages)
	row("projects", s.Projects)
	row("values fetched", s.ValuesFetched)
	row("rows written", s.RowsWritten)
	row("revisions", s.Revisions)
	row("api requests", s.APIRequests)
	row("retries", s.Retries)
	row("wake-risk requests", wakeRisk)
	row("duration", s.Duration.Round(time.Millisecond))
	if s.Watermark.IsZero() {
		row("watermark", "none")
	} else {
		row("watermark", s.Watermark.Format(time.RFC3339))
	}
	tw.Flush()
}

// printCycle writes a budgeted cycle's summary, then the freshness of each org's tiers.
func printCycle(w io.Writer, s collector.CycleSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	for _, o := range s.Orgs {
		row("run", o.RunID+" ("+o.OrgID+", "+string(o.Endpoint)+", "+string(o.Outcome)+")")
	}
	row("consumption calls", fmt.Sprintf("%d of a budget of %d", s.Calls, s.Budget))
	row("batches collected", fmt.Sprintf("%d of %d", s.Collected, s.Batches))
	row("projects listed", s.Projects)
	row("projects absent from answers", s.Absent)
	row("projects past Neon's hourly window", s.PastHorizon)
	row("values fetched", s.ValuesFetched)
	row("rows written", s.RowsWritten)
	row("revisions", s.Revisions)
	row("duration", s.Duration.Round(time.Millisecond))
	tw.Flush()
	printTiers(w, s.Tiers)
}

// printTiers writes the freshness of each org's tiers: the age of the newest hour complete for
// every project of the tier.
func printTiers(w io.Writer, tiers []collector.TierFreshness) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORG\tTIER\tPROJECTS\tCOMPLETE THROUGH\tAGE")
	for _, t := range tiers {
		through, age := "-", "-"
		if !t.Oldest.IsZero() {
			through, age = t.Oldest.UTC().Format(time.RFC3339), t.Age.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.OrgID, t.Tier, t.Projects, through, age)
	}
	tw.Flush()
}

// timeFlag parses an RFC 3339 time.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("want RFC 3339 like 2026-11-01T00:00:00Z: %w", err)
	}
	f.t = t.UTC()
	return nil
}
