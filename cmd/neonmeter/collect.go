package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// CollectCommand runs one collection sweep now.
type CollectCommand struct{ *Env }

func (c *CollectCommand) Synopsis() string { return "collect hourly consumption into ClickHouse once" }

func (c *CollectCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	var from, to timeFlag
	last := fs.Duration("last", 0, "collect the last `DURATION` of complete hours (e.g. 48h) instead of the watermark's window")
	fs.Var(&from, "from", "window start, RFC 3339 (rounded down to the hour)")
	fs.Var(&to, "to", "window end, RFC 3339, exclusive (default: the last complete hour)")
	acceptDrop := fs.Bool("accept-project-drop", false, "count the sweep as complete although Neon lists far fewer projects than the last successful sweep saw (projects really deleted)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter collect [--last 48h | --from T [--to T]]

Reads hourly consumption of every project of NEONMETER_NEON_ORG_ID from the Neon API
(NEONMETER_NEON_CONSUMPTION_API: v2 or legacy) and writes new or changed values to ClickHouse.
Without flags the window is [watermark - NEONMETER_COLLECT_LOOKBACK, last complete hour).
Consumption calls never wake a compute. Exit code 1 when the sweep failed; a re-run repairs it.
A sweep seeing far fewer projects than the last successful one (NEONMETER_COLLECT_MIN_PROJECTS_RATIO)
fails; --accept-project-drop confirms the projects are really gone. On SIGINT or SIGTERM the sweep
may finish within NEONMETER_SHUTDOWN_TIMEOUT, then it is stopped (exit 1); a second signal exits
at once.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := checkCollectFlags(fs, *last, from.t, to.t); err != nil {
		return err
	}
	cfg, err := c.configFor(useNeonKey | useClickHousePass)
	if err != nil {
		return err
	}
	w := collector.Window{From: from.t, To: to.t}
	if *last > 0 {
		now := time.Now().UTC().Truncate(time.Hour)
		w = collector.Window{From: now.Add(-*last), To: now}
	}
	d := c.deps(cfg, nil)
	defer d.close()
	client, err := d.Neon()
	if err != nil {
		return err
	}
	if _, err := d.Migrated(ctx); err != nil {
		return err
	}
	cc, err := d.CollectorConfig(ctx, nil, progressReporter(c.Stderr, d.log, 2*time.Second))
	if err != nil {
		return err
	}
	cc.AcceptProjectDrop = *acceptDrop
	col, err := collector.New(cc)
	if err != nil {
		return usageError{err}
	}
	// A signal lets the sweep finish within NEONMETER_SHUTDOWN_TIMEOUT, then stops it (recorded
	// as stopped; exit 1, as the window is not complete).
	work, stopWork := graceful(ctx, cfg.ShutdownTimeout)
	defer stopWork()
	sum, err := col.Sweep(work, w)
	if isTerminal(c.Stderr) {
		fmt.Fprintln(c.Stderr)
	}
	printSummary(c.Stdout, sum, client.Stats().WakeRisk)
	return err
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
