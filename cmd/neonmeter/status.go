package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/plans"
)

// StatusCommand reports the watermark, recent sweeps and uncovered hours.
type StatusCommand struct{ *Env }

func (c *StatusCommand) Synopsis() string {
	return "show collection coverage: watermark, recent runs, gaps"
}

const statusUsage = `Usage: neonmeter status [--window 167h] [--runs 5]

Shows, for each org of NEONMETER_NEON_ORG_IDS (or NEONMETER_NEON_ORG_ID), the watermark (end of
the newest completely collected window), data freshness, the freshness of the budgeted cycles'
tiers, the last runs, and every range of hours no successful sweep covered. Exit code 1 when
there are gaps, so it can gate a backfill.

Flags:`

func (c *StatusCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("status", statusUsage)
	window := fs.Duration("window", collector.HourlyWindow-time.Hour, "look for gaps in the last `DURATION` of complete hours (Neon serves hourly data for 168h)")
	runs := fs.Int("runs", 5, "show the last `N` runs")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *runs < 0 || *window < time.Hour {
		return usagef("--window must be at least 1h and --runs not negative")
	}
	// status reads ClickHouse only: no Neon key.
	return c.withDeps(useClickHousePass, func(d *deps) error {
		orgs := d.cfg.orgs()
		if len(orgs) == 0 {
			return usagef("NEONMETER_NEON_ORG_ID (or NEONMETER_NEON_ORG_IDS) is required")
		}
		conn, err := d.Migrated(ctx)
		if err != nil {
			return err
		}
		now, _ := d.cfg.clock()
		return c.report(ctx, collectorstore.New(conn, d.cfg.ClickHouseDB), d.cfg, orgs, now().UTC(), *window, *runs)
	})
}

// report prints every org's status and tier freshness; the error names the gaps found.
func (c *StatusCommand) report(ctx context.Context, store *collectorstore.Store, cfg Config, orgs []neonOrg, at time.Time, window time.Duration, runs int) error {
	tiers, err := collector.ReadFreshness(ctx, store, collector.FreshnessQuery{Orgs: fleetOrgs(orgs), Now: at,
		PeriodEnd: plans.PeriodEnd, PeriodGrace: cfg.BillingGrace})
	if err != nil {
		return err
	}
	var gapErrs []error
	for i, org := range orgs {
		if i > 0 {
			fmt.Fprintln(c.Stdout)
		}
		st, err := collector.ReadStatus(ctx, store, org.ID, org.Endpoint, at, window)
		if err != nil {
			return err
		}
		if err := c.printStatus(org, st, at, window, runs); err != nil {
			gapErrs = append(gapErrs, err)
		}
		fmt.Fprintln(c.Stdout, "\nfreshness by tier (budgeted cycles):")
		printTiers(c.Stdout, slices.DeleteFunc(slices.Clone(tiers), func(t collector.TierFreshness) bool { return t.OrgID != org.ID }))
	}
	return errors.Join(gapErrs...)
}

// fleetOrgs are the configured orgs as the collector names them.
func fleetOrgs(orgs []neonOrg) []collector.FleetOrg {
	out := make([]collector.FleetOrg, len(orgs))
	for i, o := range orgs {
		out[i] = collector.FleetOrg{ID: o.ID, Endpoint: o.Endpoint}
	}
	return out
}

// printStatus writes one org's status; the error names its gaps, if any.
func (c *StatusCommand) printStatus(org neonOrg, st collector.Status, now time.Time, window time.Duration, runs int) error {
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "org\t%s\nendpoint\t%s\n", org.ID, org.Endpoint)
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
		if i == runs {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s..%s\t%s\t%d\t%d\t%d\t%d\t%.1fs\t%s\n", r.RunID, r.Granularity,
			r.WindowFrom.Format(time.RFC3339), r.WindowTo.Format(time.RFC3339), r.Outcome,
			r.Pages, r.ValuesFetched, r.RowsWritten, r.Revisions, r.DurationSeconds, r.Error)
	}
	tw.Flush()
	if len(st.Gaps) == 0 {
		fmt.Fprintf(c.Stdout, "\nno gaps in the last %s\n", window)
		return nil
	}
	fmt.Fprintf(c.Stdout, "\ngaps (hours no successful sweep covered):\n")
	total := 0
	for _, g := range st.Gaps {
		total += g.Hours()
		fmt.Fprintf(c.Stdout, "  %s .. %s  (%d h)\n", g.From.Format(time.RFC3339), g.To.Format(time.RFC3339), g.Hours())
	}
	return fmt.Errorf("org %s: %d uncovered hour(s) in %d gap(s); run neonmeter backfill --from %s --to %s",
		org.ID, total, len(st.Gaps), st.Gaps[0].From.Format(time.RFC3339), st.Gaps[len(st.Gaps)-1].To.Format(time.RFC3339))
}
