package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter collect [--last 48h | --from T [--to T]]

Reads hourly consumption of every project of NEONMETER_NEON_ORG_ID from the Neon API
(NEONMETER_NEON_CONSUMPTION_API: v2 or legacy) and writes new or changed values to ClickHouse.
Without flags the window is [watermark - NEONMETER_COLLECT_LOOKBACK, last complete hour).
Consumption calls never wake a compute. Exit code 1 when the sweep failed; a re-run repairs it.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *last < 0 || (*last > 0 && (!from.t.IsZero() || !to.t.IsZero())) {
		return usagef("--last takes a positive duration and excludes --from/--to")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.logger(cfg)
	w := collector.Window{From: from.t, To: to.t}
	if *last > 0 {
		now := time.Now().UTC().Truncate(time.Hour)
		w = collector.Window{From: now.Add(-*last), To: now}
	}
	client, conn, err := openNeonAndClickHouse(ctx, cfg, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	defer conn.Close()
	col, err := newCollector(cfg, client, conn, nil, log, progressReporter(c.Stderr, log, 2*time.Second))
	if err != nil {
		return usageError{err}
	}
	sum, err := col.Sweep(ctx, w)
	if isTerminal(c.Stderr) {
		fmt.Fprintln(c.Stderr)
	}
	printSummary(c.Stdout, sum, client.Stats().WakeRisk)
	return err
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
