package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/finance"
	financestore "github.com/neonmeter/neonmeter/finance/chstore"
	"github.com/neonmeter/neonmeter/plans"
)

// ReportCommand prints finance's views: one customer's month, or the fleet's.
type ReportCommand struct{ *Env }

func (c *ReportCommand) Synopsis() string {
	return "finance reports: a customer's month (report customer ID), the fleet's (report fleet)"
}

const reportUsage = `Usage:
  neonmeter report customer CUSTOMER [--period YYYY-MM] [--format table|csv|json]
  neonmeter report fleet [--period YYYY-MM] [--format table|csv|json] [--top N]

Reads ClickHouse only (never Stripe or Neon); see docs/finance.md.

  customer  A Stripe customer's month: its projects and plan history, usage per metric (per
            hour with csv and json), units billed per meter (the ledger), what Stripe holds (the
            ledger corrected by the newest reconcile's drift), late adjustments, enforcement
            actions, and cost, revenue and margin per plan and metric.
  fleet     The month of every customer: units and margin per plan and meter, customers per
            plan, the top customers, drift of the newest reconcile, late adjustments.

Margin needs the cost table NEONMETER_COSTS_FILE (finance/example-costs.yaml); each report
loads it into ClickHouse (neon_unit_costs, plan_unit_prices) first. Amounts are exact, in the
table's currency. The period is a UTC calendar month (default: the current one).

Exit codes: 0 done, 1 ClickHouse failed, 2 bad usage, configuration or cost table.`

func (c *ReportCommand) Run(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "report", reportUsage, args, subcommand{"customer", c.customer}, subcommand{"fleet", c.fleet})
}

// reportFlags are the flags both reports share.
type reportFlags struct {
	period, format string
	top            int
}

func (c *ReportCommand) flags(name, usage string, args []string, max int) (reportFlags, []string, error) {
	var f reportFlags
	fs := newFlags("report "+name, usage)
	fs.StringVar(&f.period, "period", time.Now().UTC().Format("2006-01"), "billing period, a UTC month like 2026-11")
	fs.StringVar(&f.format, "format", "table", "table, csv or json")
	fs.IntVar(&f.top, "top", 10, "customers listed by revenue (fleet)")
	rest, err := c.parsePositional(fs, args, max)
	if err != nil {
		return f, nil, err
	}
	if f.format != "table" && f.format != "csv" && f.format != "json" {
		return f, nil, usagef("--format must be table, csv or json, got %q", f.format)
	}
	return f, rest, nil
}

// newFinance builds finance's store and, when NEONMETER_COSTS_FILE is set, validates the cost
// table against the catalog and loads it into ClickHouse.
func newFinance(ctx context.Context, cfg Config, conn driver.Conn, cat *plans.Catalog) (finance.Store, *finance.Costs, error) {
	st := financestore.New(conn, cfg.ClickHouseDB)
	if cfg.CostsFile == "" {
		return st, nil, nil
	}
	costs, err := finance.LoadCosts(cfg.CostsFile, cat)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("%s_COSTS_FILE: %w", envPrefix, err)}
	}
	if err := st.LoadCosts(ctx, costs, cfg.DefaultPlan, time.Now().UTC()); err != nil {
		return nil, nil, err
	}
	return st, costs, nil
}

// reportRun is what both reports read: the period's bounds, finance's store and the cost table.
type reportRun struct {
	d        *deps
	st       finance.Store
	costs    *finance.Costs
	from, to time.Time
}

// withReport runs work with what the reports of period read.
func (c *ReportCommand) withReport(ctx context.Context, period string, work func(run *reportRun) error) error {
	from, to, err := finance.Period(period)
	if err != nil {
		return usageError{err}
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		st, costs, err := d.Finance(ctx)
		if err != nil {
			return err
		}
		return work(&reportRun{d: d, st: st, costs: costs, from: from, to: to})
	})
}

// label names the default plan in a report's margin rows and returns the report's currency and
// default plan.
func (r *reportRun) label(margin []finance.MarginRow) (currency, defaultPlan string) {
	finance.NamePlans(margin, r.d.cfg.DefaultPlan)
	return currencyOf(r.costs), r.d.cfg.DefaultPlan
}

func (c *ReportCommand) customer(ctx context.Context, args []string) error {
	f, rest, err := c.flags("customer", "Usage: neonmeter report customer CUSTOMER [--period YYYY-MM] [--format table|csv|json]\n\nFlags:", args, 1)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("name the customer: report customer CUSTOMER")
	}
	return c.withReport(ctx, f.period, func(run *reportRun) error {
		r, err := finance.Customer(ctx, run.st, rest[0], run.from, run.to)
		if err != nil {
			return err
		}
		r.Currency, r.DefaultPlan = run.label(r.Margin)
		return writeCustomer(c.Stdout, f.format, r)
	})
}

func (c *ReportCommand) fleet(ctx context.Context, args []string) error {
	f, _, err := c.flags("fleet", "Usage: neonmeter report fleet [--period YYYY-MM] [--format table|csv|json] [--top N]\n\nFlags:", args, 0)
	if err != nil {
		return err
	}
	return c.withReport(ctx, f.period, func(run *reportRun) error {
		r, err := finance.Fleet(ctx, run.st, run.from, run.to)
		if err != nil {
			return err
		}
		r.Currency, r.DefaultPlan = run.label(r.Margin)
		return writeFleet(c.Stdout, f.format, f.top, r)
	})
}

func currencyOf(c *finance.Costs) string {
	if c == nil {
		return ""
	}
	return c.Currency
}

func money(v int64) string { return finance.FormatMicros(v) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// csvRow is the one shape of every csv line: the section, then what locates the value, then
// the value (integers exact; money in currency units with six decimals).
var csvHeader = []string{"section", "customer", "plan", "project", "target", "metric", "time", "value", "detail"}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

func writeCustomer(w io.Writer, format string, r *finance.CustomerReport) error {
	switch format {
	case "json":
		return writeJSON(w, customerJSON(r))
	case "csv":
		return writeCSV(w, customerCSV(r))
	}
	return customerTable(w, r)
}

// writeCSV writes the header and rows.
func writeCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, row := range rows {
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

func customerTable(w io.Writer, r *finance.CustomerReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "customer %s, %s (%s to %s)\n\nPROJECT\tFROM\tCUSTOMER\tPLAN\n", r.Customer, r.From.Format("2006-01"), ts(r.From), ts(r.To))
	for _, p := range r.Projects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ProjectID, ts(p.ValidFrom), orDash(p.CustomerID), orDefault(p.Plan, r.DefaultPlan))
	}
	fmt.Fprintf(tw, "\nMETRIC\tRAW USAGE\n")
	for _, t := range r.Totals() {
		fmt.Fprintf(tw, "%s\t%d\n", t.Metric, t.Raw)
	}
	fmt.Fprintf(tw, "\nTARGET\tSINK\tMETRIC\tHOURS\tBILLED (LEDGER)\tCONFIRMED\n")
	for _, b := range r.Billed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", b.Target, b.Sink, b.Metric, b.Hours, b.Value, b.Confirmed)
	}
	fmt.Fprintf(tw, "\nTARGET\tSINK\tEXPECTED\tSTRIPE HOLDS\n")
	for _, h := range r.Held {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", h.Target, h.Sink, h.Expected, h.Stripe)
	}
	fmt.Fprintf(tw, "\nLATE ADJUSTMENT HOUR\tTARGET\tREASON\tOLD\tNEW\tAMOUNT\n")
	for _, l := range r.Late {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", ts(l.Hour), l.Target, l.Reason, l.OldValue, l.NewValue, l.Amount)
	}
	fmt.Fprintf(tw, "\nENFORCEMENT AT\tPROJECT\tMETRIC\tLEVEL\tACTION\tMODE\tOUTCOME\n")
	for _, a := range r.Actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(a.At), a.ProjectID, a.Metric, a.Level, a.Action, a.Mode, a.Outcome)
	}
	marginTable(tw, r.Margin, r.Currency)
	return tw.Flush()
}

func marginTable(tw io.Writer, rows []finance.MarginRow, currency string) {
	if currency == "" {
		fmt.Fprintf(tw, "\nno cost table (%s_COSTS_FILE): margin shows only what an earlier load left\n", envPrefix)
	}
	fmt.Fprintf(tw, "\nPLAN\tMETRIC\tRAW\tTARGET\tUNITS\tCOST %s\tREVENUE\tMARGIN\n", currency)
	for _, m := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", m.Plan, m.Metric, m.Raw, orDash(m.Target), m.Units, money(m.CostMicros), money(m.RevenueMicros), money(m.MarginMicros()))
	}
	for _, s := range finance.SumBy(rows, func(m finance.MarginRow) string { return m.Plan }) {
		fmt.Fprintf(tw, "%s\ttotal\t\t\t\t%s\t%s\t%s\n", s.Key, money(s.CostMicros), money(s.RevenueMicros), money(s.Margin))
	}
}

func orDefault(plan, def string) string {
	if plan == "" {
		return def + " (default)"
	}
	return plan
}
