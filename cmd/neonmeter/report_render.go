package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/finance"
)

// marginJSON is a margin row with its amounts both exact (micro-units) and readable.
type marginJSON struct {
	Customer      string `json:"customer"`
	Plan          string `json:"plan"`
	Month         string `json:"month"`
	Metric        string `json:"metric"`
	Raw           uint64 `json:"raw"`
	Target        string `json:"target,omitempty"`
	Units         int64  `json:"units"`
	CostMicros    int64  `json:"cost_micros"`
	RevenueMicros int64  `json:"revenue_micros"`
	MarginMicros  int64  `json:"margin_micros"`
	Cost          string `json:"cost"`
	Revenue       string `json:"revenue"`
	Margin        string `json:"margin"`
}

func marginsJSON(rows []finance.MarginRow) []marginJSON {
	out := make([]marginJSON, len(rows))
	for i, m := range rows {
		out[i] = marginJSON{Customer: m.CustomerID, Plan: m.Plan, Month: m.Month.Format("2006-01"), Metric: m.Metric, Raw: m.Raw, Target: m.Target,
			Units: m.Units, CostMicros: m.CostMicros, RevenueMicros: m.RevenueMicros, MarginMicros: m.MarginMicros(),
			Cost: money(m.CostMicros), Revenue: money(m.RevenueMicros), Margin: money(m.MarginMicros())}
	}
	return out
}

func customerJSON(r *finance.CustomerReport) any {
	return struct {
		Customer    string                `json:"customer"`
		From        time.Time             `json:"from"`
		To          time.Time             `json:"to"`
		Currency    string                `json:"currency"`
		DefaultPlan string                `json:"default_plan"`
		Projects    []finance.ProjectRow  `json:"projects"`
		Usage       []finance.MetricTotal `json:"usage"`
		Hourly      []finance.HourRow     `json:"hourly"`
		Billed      []finance.BilledRow   `json:"billed"`
		Held        []finance.HeldRow     `json:"stripe_held"`
		Drift       []finance.DriftRow    `json:"drift"`
		Late        []finance.LateRow     `json:"late_adjustments"`
		Actions     []finance.ActionRow   `json:"enforcement"`
		Margin      []marginJSON          `json:"margin"`
		Plans       []finance.Sum         `json:"margin_per_plan"`
	}{r.Customer, r.From, r.To, r.Currency, r.DefaultPlan, r.Projects, r.Totals(), r.Hourly, r.Billed, r.Held, r.Drift, r.Late, r.Actions,
		marginsJSON(r.Margin), finance.SumBy(r.Margin, func(m finance.MarginRow) string { return m.Plan })}
}

func customerCSV(r *finance.CustomerReport) [][]string {
	var out [][]string
	add := func(section, plan, project, target, metric string, at time.Time, value, detail string) {
		out = append(out, []string{section, r.Customer, plan, project, target, metric, ts(at), value, detail})
	}
	for _, p := range r.Projects {
		add("project", orDefault(p.Plan, r.DefaultPlan), p.ProjectID, "", "", p.ValidFrom, "", "customer="+p.CustomerID)
	}
	for _, h := range r.Hourly {
		add("usage_hourly", "", "", "", h.Metric, h.Hour, u64(h.Raw), "")
	}
	for _, b := range r.Billed {
		add("billed", "", "", b.Target, b.Metric, time.Time{}, i64(b.Value), "sink="+b.Sink+" confirmed="+i64(b.Confirmed))
	}
	for _, h := range r.Held {
		add("stripe_held", "", "", h.Target, "", time.Time{}, i64(h.Stripe), "expected="+i64(h.Expected))
	}
	for _, l := range r.Late {
		add("late_adjustment", "", "", l.Target, l.Metric, l.Hour, i64(l.Amount), "reason="+l.Reason)
	}
	for _, a := range r.Actions {
		add("enforcement", a.Plan, a.ProjectID, "", a.Metric, a.At, a.Action, "level="+a.Level+" mode="+a.Mode+" outcome="+a.Outcome)
	}
	for _, m := range r.Margin {
		add("margin", m.Plan, "", m.Target, m.Metric, m.Month, money(m.MarginMicros()),
			fmt.Sprintf("raw=%d units=%d cost=%s revenue=%s %s", m.Raw, m.Units, money(m.CostMicros), money(m.RevenueMicros), r.Currency))
	}
	return out
}

func writeFleet(w io.Writer, format string, top int, r *finance.FleetReport) error {
	byPlan := finance.SumBy(r.Margin, func(m finance.MarginRow) string { return m.Plan })
	byMeter := finance.SumBy(r.Margin, func(m finance.MarginRow) string { return m.Plan + " " + orDash(m.Target) })
	leaders := finance.Top(r.Margin, top)
	switch format {
	case "json":
		return writeJSON(w, struct {
			From     time.Time           `json:"from"`
			To       time.Time           `json:"to"`
			Currency string              `json:"currency"`
			Plans    []finance.Sum       `json:"plans"`
			Meters   []finance.Sum       `json:"plan_meters"`
			Top      []finance.Sum       `json:"top_customers"`
			Billed   []finance.BilledRow `json:"billed"`
			Drift    []finance.DriftRow  `json:"drift"`
			Late     []finance.LateRow   `json:"late_adjustments"`
			Margin   []marginJSON        `json:"margin"`
		}{r.From, r.To, r.Currency, byPlan, byMeter, leaders, r.Billed, r.Drift, r.Late, marginsJSON(r.Margin)})
	case "csv":
		return writeCSV(w, fleetCSV(r, byPlan, byMeter, leaders))
	}
	return fleetTable(w, r, byPlan, byMeter, leaders)
}

func sumDetail(s finance.Sum, currency string) string {
	return fmt.Sprintf("customers=%d units=%d cost=%s revenue=%s margin=%s %s", s.Customers, s.Units, money(s.CostMicros), money(s.RevenueMicros), money(s.Margin), currency)
}

func fleetCSV(r *finance.FleetReport, byPlan, byMeter, leaders []finance.Sum) [][]string {
	var out [][]string
	month := ts(r.From)
	for _, s := range byPlan {
		out = append(out, []string{"plan", "", s.Key, "", "", "", month, money(s.Margin), sumDetail(s, r.Currency)})
	}
	for _, s := range byMeter {
		out = append(out, []string{"plan_meter", "", "", "", s.Key, "", month, i64(s.Units), sumDetail(s, r.Currency)})
	}
	for _, s := range leaders {
		out = append(out, []string{"top_customer", s.Key, "", "", "", "", month, money(s.RevenueMicros), sumDetail(s, r.Currency)})
	}
	for _, b := range r.Billed {
		out = append(out, []string{"billed", b.CustomerID, "", "", b.Target, b.Metric, month, i64(b.Value), "sink=" + b.Sink + " confirmed=" + i64(b.Confirmed)})
	}
	for _, d := range r.Drift {
		out = append(out, []string{"drift", d.CustomerID, "", "", d.Target, "", ts(d.Bucket), i64(d.Drift), "run=" + d.RunID})
	}
	for _, l := range r.Late {
		out = append(out, []string{"late_adjustment", l.CustomerID, "", "", l.Target, l.Metric, ts(l.Hour), i64(l.Amount), "reason=" + l.Reason})
	}
	return out
}

func fleetTable(w io.Writer, r *finance.FleetReport, byPlan, byMeter, leaders []finance.Sum) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "fleet, %s (%s to %s)\n", r.From.Format("2006-01"), ts(r.From), ts(r.To))
	if r.Currency == "" {
		fmt.Fprintf(tw, "no cost table (%s_COSTS_FILE): margin shows only what an earlier load left\n", envPrefix)
	}
	fmt.Fprintf(tw, "\nPLAN\tCUSTOMERS\tCOST %s\tREVENUE\tMARGIN\n", r.Currency)
	for _, s := range byPlan {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Key, s.Customers, money(s.CostMicros), money(s.RevenueMicros), money(s.Margin))
	}
	fmt.Fprintf(tw, "\nPLAN METER\tCUSTOMERS\tUNITS\tREVENUE\n")
	for _, s := range byMeter {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Key, s.Customers, s.Units, money(s.RevenueMicros))
	}
	fmt.Fprintf(tw, "\nTOP CUSTOMER\tCOST\tREVENUE\tMARGIN\n")
	for _, s := range leaders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", orDash(s.Key), money(s.CostMicros), money(s.RevenueMicros), money(s.Margin))
	}
	fmt.Fprintf(tw, "\nCUSTOMER\tTARGET\tSINK\tBILLED (LEDGER)\tCONFIRMED\n")
	for _, b := range r.Billed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", b.CustomerID, b.Target, b.Sink, b.Value, b.Confirmed)
	}
	fmt.Fprintf(tw, "\nDRIFT BUCKET\tCUSTOMER\tTARGET\tEXPECTED\tACTUAL\tDRIFT\n")
	for _, d := range r.Drift {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", ts(d.Bucket), d.CustomerID, d.Target, d.Expected, d.Actual, d.Drift)
	}
	fmt.Fprintf(tw, "\nLATE ADJUSTMENT HOUR\tCUSTOMER\tTARGET\tREASON\tAMOUNT\n")
	for _, l := range r.Late {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", ts(l.Hour), l.CustomerID, l.Target, l.Reason, l.Amount)
	}
	return tw.Flush()
}
