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

// StatusCommand reports the watermark, recent sweeps and uncovered hours.
type StatusCommand struct{ *Env }

func (c *StatusCommand) Synopsis() string {
	return "show collection coverage: watermark, recent runs, gaps"
}

func (c *StatusCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	window := fs.Duration("window", collector.HourlyWindow-time.Hour, "look for gaps in the last `DURATION` of complete hours (Neon serves hourly data for 168h)")
	runs := fs.Int("runs", 5, "show the last `N` runs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter status [--window 167h] [--runs 5]

Shows, for NEONMETER_NEON_ORG_ID and NEONMETER_NEON_CONSUMPTION_API, the watermark (end of the
newest completely collected window), data freshness, the last runs, and every range of hours no
successful sweep covered. Exit code 1 when there are gaps, so it can gate a backfill.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *runs < 0 || *window < time.Hour {
		return usagef("--window must be at least 1h and --runs not negative")
	}
	cfg, err := c.configFor(useClickHousePass) // status reads ClickHouse only: no Neon key
	if err != nil {
		return err
	}
	if cfg.NeonOrgID == "" {
		return usagef("NEONMETER_NEON_ORG_ID is required")
	}
	d := c.deps(cfg, nil)
	defer d.close()
	conn, err := d.Migrated(ctx)
	if err != nil {
		return err
	}
	store := collectorstore.New(conn, cfg.ClickHouseDB)
	now := time.Now().UTC()
	st, err := collector.ReadStatus(ctx, store, cfg.NeonOrgID, collector.Endpoint(cfg.NeonConsumption), now, *window)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "org\t%s\nendpoint\t%s\n", cfg.NeonOrgID, cfg.NeonConsumption)
	if st.HasWatermark {
		fmt.Fprintf(tw, "watermark\t%s\nfreshness\t%s\n", st.Watermark.Format(time.RFC3339), now.Sub(st.Watermark).Round(time.Second))
	} else {
		fmt.Fprintf(tw, "watermark\tnone (never collected)\n")
	}
	tw.Flush()
	fmt.Fprintln(c.Stdout, "\nrecent runs:")
	tw = tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tGRANULARITY\tWINDOW\tOUTCOME\tPAGES\tVALUES\tROWS\tREVISIONS\tDURATION\tERROR")
	for i, r := range st.Runs {
		if i == *runs {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s..%s\t%s\t%d\t%d\t%d\t%d\t%.1fs\t%s\n", r.RunID, r.Granularity,
			r.WindowFrom.Format(time.RFC3339), r.WindowTo.Format(time.RFC3339), r.Outcome,
			r.Pages, r.ValuesFetched, r.RowsWritten, r.Revisions, r.DurationSeconds, r.Error)
	}
	tw.Flush()
	if len(st.Gaps) == 0 {
		fmt.Fprintf(c.Stdout, "\nno gaps in the last %s\n", *window)
		return nil
	}
	fmt.Fprintf(c.Stdout, "\ngaps (hours no successful sweep covered):\n")
	total := 0
	for _, g := range st.Gaps {
		total += g.Hours()
		fmt.Fprintf(c.Stdout, "  %s .. %s  (%d h)\n", g.From.Format(time.RFC3339), g.To.Format(time.RFC3339), g.Hours())
	}
	return fmt.Errorf("%d uncovered hour(s) in %d gap(s); run neonmeter backfill --from %s --to %s",
		total, len(st.Gaps), st.Gaps[0].From.Format(time.RFC3339), st.Gaps[len(st.Gaps)-1].To.Format(time.RFC3339))
}
