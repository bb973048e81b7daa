package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
)

// BackfillCommand collects a past range at the finest granularity Neon still serves.
type BackfillCommand struct{ *Env }

func (c *BackfillCommand) Synopsis() string {
	return "collect a past range: hourly, then daily and monthly beyond Neon's windows"
}

func (c *BackfillCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	var from, to timeFlag
	fs.Var(&from, "from", "range start, RFC 3339 (required)")
	fs.Var(&to, "to", "range end, RFC 3339, exclusive (default: the last complete hour)")
	dryRun := fs.Bool("dry-run", false, "print the segments that would be collected and stop")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter backfill --from T [--to T] [--dry-run]

Collects [from, to) for NEONMETER_NEON_ORG_ID. Neon serves hourly data for 168 hours, daily for
60 days and monthly for a year: the range is split at day and month edges so each part uses the
finest granularity still available. Daily and monthly values go to usage_coarse, apart from
hourly facts, and never overlap them. Re-running writes nothing new. Progress goes to stderr.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if from.t.IsZero() {
		return usagef("--from is required")
	}
	end := to.t
	if end.IsZero() {
		end = time.Now().UTC().Truncate(time.Hour)
	}
	if !end.After(from.t) {
		return usagef("--to (%s) must be after --from (%s)", end.Format(time.RFC3339), from.t.Format(time.RFC3339))
	}
	segs, err := collector.PlanBackfill(from.t, end, time.Now())
	if err != nil {
		return usageError{err}
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANULARITY\tFROM\tTO")
	for _, s := range segs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Granularity, s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	}
	tw.Flush()
	if *dryRun {
		return nil
	}
	cfg, err := c.configFor(useNeonKey | useClickHousePass)
	if err != nil {
		return err
	}
	d := c.deps(cfg, nil)
	defer d.close()
	client, err := d.Neon()
	if err != nil {
		return err
	}
	conn, err := d.Migrated(ctx)
	if err != nil {
		return err
	}
	col, err := d.Collector(ctx, nil, progressReporter(c.Stderr, d.log, 2*time.Second))
	if err != nil {
		return err
	}
	res, err := col.Backfill(ctx, from.t, end, collectorstore.New(conn, cfg.ClickHouseDB))
	if isTerminal(c.Stderr) {
		fmt.Fprintln(c.Stderr)
	}
	for _, s := range res.Segments {
		fmt.Fprintf(c.Stdout, "\n%s segment:\n", s.Segment.Granularity)
		printSummary(c.Stdout, s.Summary, client.Stats().WakeRisk)
	}
	return err
}
