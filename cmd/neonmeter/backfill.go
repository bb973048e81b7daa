package main

import (
	"context"
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
	fs := newFlags("backfill", `Usage: neonmeter backfill --from T [--to T] [--org ID] [--dry-run]

Collects [from, to) for the configured org (--org names one of several). Neon serves hourly data for 168 hours, daily for
60 days and monthly for a year: the range is split at day and month edges so each part uses the
finest granularity still available. Daily and monthly values go to usage_coarse, apart from
hourly facts, and never overlap them. Re-running writes nothing new. Progress goes to stderr.

Flags:`)
	var from, to timeFlag
	fs.Var(&from, "from", "range start, RFC 3339 (required)")
	fs.Var(&to, "to", "range end, RFC 3339, exclusive (default: the last complete hour)")
	dryRun := fs.Bool("dry-run", false, "print the segments that would be collected and stop")
	org := fs.String("org", "", "the org to backfill, when NEONMETER_NEON_ORG_IDS names several")
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
	return c.withDeps(useNeonKey|useClickHousePass, func(d *deps) error {
		conn, err := d.Migrated(ctx)
		if err != nil {
			return err
		}
		col, err := d.Collector(ctx, *org, nil, progressReporter(c.Stderr, d.log, 2*time.Second), nil)
		if err != nil {
			return err
		}
		res, err := col.Backfill(ctx, from.t, end, collectorstore.New(conn, d.cfg.ClickHouseDB))
		if isTerminal(c.Stderr) {
			fmt.Fprintln(c.Stderr)
		}
		for _, s := range res.Segments {
			fmt.Fprintf(c.Stdout, "\n%s segment:\n", s.Segment.Granularity)
			printSummary(c.Stdout, s.Summary, d.wakeRisk())
		}
		return err
	})
}
