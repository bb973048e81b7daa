package finance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/plans"
)

// Period returns the billing period (a UTC calendar month) written "2026-11".
func Period(s string) (from, to time.Time, err error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("period %q: want a month like 2026-11", s)
	}
	return plans.PeriodStart(t), plans.PeriodEnd(t), nil
}

// CustomerReport is one customer's month: what its invoice says and why.
type CustomerReport struct {
	Customer    string
	From, To    time.Time
	Currency    string
	DefaultPlan string
	Projects    []ProjectRow
	Hourly      []HourRow
	Margin      []MarginRow
	Billed      []BilledRow
	// Held is what Stripe holds per target: the ledger's confirmed values corrected by the drift
	// the newest reconcile found.
	Held    []HeldRow
	Drift   []DriftRow
	Late    []LateRow
	Actions []ActionRow
}

// HeldRow compares what billing expects Stripe to hold for a target with what Stripe holds.
type HeldRow struct {
	Target, Sink     string
	Expected, Stripe int64
}

// MetricTotal is a metric's raw usage over the report's range.
type MetricTotal struct {
	Metric string
	Raw    uint64
}

// Totals sums the hourly usage per metric, sorted by metric.
func (r *CustomerReport) Totals() []MetricTotal {
	sum := map[string]uint64{}
	for _, h := range r.Hourly {
		sum[h.Metric] += h.Raw
	}
	out := make([]MetricTotal, 0, len(sum))
	for _, m := range slices.Sorted(maps.Keys(sum)) {
		out = append(out, MetricTotal{Metric: m, Raw: sum[m]})
	}
	return out
}

// Customer reads one customer's report for [from, to) from st.
func Customer(ctx context.Context, st Store, customer string, from, to time.Time) (*CustomerReport, error) {
	if customer == "" {
		return nil, fmt.Errorf("finance report: no customer given")
	}
	r := &CustomerReport{Customer: customer, From: from, To: to}
	var err error
	steps := []struct {
		name string
		run  func() error
	}{
		{"projects", func() error { r.Projects, err = st.Projects(ctx, customer, to); return err }},
		{"usage", func() error { r.Hourly, err = st.Hourly(ctx, customer, from, to); return err }},
		{"margin", func() error { r.Margin, err = st.Margin(ctx, customer, from, to); return err }},
		{"ledger", func() error { r.Billed, err = st.Billed(ctx, customer, from, to); return err }},
		{"drift", func() error { r.Drift, err = st.Drift(ctx, customer, from, to); return err }},
		{"late adjustments", func() error { r.Late, err = st.Late(ctx, customer, from, to); return err }},
		{"enforcement", func() error { r.Actions, err = st.Actions(ctx, customer, from, to); return err }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			return nil, fmt.Errorf("finance report of customer %s, %s: %w", customer, s.name, err)
		}
	}
	r.Held = Held(r.Billed, r.Drift)
	return r, nil
}

// Held is what Stripe holds per (customer's) target: the confirmed values plus the drift
// (actual − expected) of the newest reconcile. A pure function of the ledger and the drift.
func Held(billed []BilledRow, drift []DriftRow) []HeldRow {
	type key struct{ target, sink string }
	idx := map[key]int{}
	var out []HeldRow
	for _, b := range billed {
		idx[key{b.Target, b.Sink}] = len(out)
		out = append(out, HeldRow{Target: b.Target, Sink: b.Sink, Expected: b.Value, Stripe: b.Confirmed})
	}
	for _, d := range drift {
		i, ok := idx[key{d.Target, d.Sink}]
		if !ok {
			idx[key{d.Target, d.Sink}], i = len(out), len(out)
			out = append(out, HeldRow{Target: d.Target, Sink: d.Sink})
		}
		out[i].Stripe += d.Drift
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target+out[i].Sink < out[j].Target+out[j].Sink })
	return out
}

// FleetReport is finance's month across every customer.
type FleetReport struct {
	From, To    time.Time
	Currency    string
	DefaultPlan string
	Margin      []MarginRow
	Billed      []BilledRow
	Drift       []DriftRow
	Late        []LateRow
}

// Fleet reads the fleet's report for [from, to) from st.
func Fleet(ctx context.Context, st Store, from, to time.Time) (*FleetReport, error) {
	r := &FleetReport{From: from, To: to}
	var err error
	if r.Margin, err = st.Margin(ctx, "", from, to); err != nil {
		return nil, fmt.Errorf("finance fleet report, margin: %w", err)
	}
	if r.Billed, err = st.Billed(ctx, "", from, to); err != nil {
		return nil, fmt.Errorf("finance fleet report, ledger: %w", err)
	}
	if r.Drift, err = st.Drift(ctx, "", from, to); err != nil {
		return nil, fmt.Errorf("finance fleet report, drift: %w", err)
	}
	if r.Late, err = st.Late(ctx, "", from, to); err != nil {
		return nil, fmt.Errorf("finance fleet report, late adjustments: %w", err)
	}
	return r, nil
}

// Sum is revenue, cost and margin of a group of margin rows, with the customers in it.
type Sum struct {
	Key                               string
	Customers                         int
	Units                             int64
	CostMicros, RevenueMicros, Margin int64
}

// SumBy groups margin rows by key (a plan, a customer, a plan and target, …), sorted by key.
func SumBy(rows []MarginRow, key func(MarginRow) string) []Sum {
	acc := map[string]*Sum{}
	seen := map[string]map[string]bool{}
	for _, r := range rows {
		k := key(r)
		s := acc[k]
		if s == nil {
			s, seen[k] = &Sum{Key: k}, map[string]bool{}
			acc[k] = s
		}
		s.Units += r.Units
		s.CostMicros += r.CostMicros
		s.RevenueMicros += r.RevenueMicros
		s.Margin += r.MarginMicros()
		if !seen[k][r.CustomerID] {
			seen[k][r.CustomerID] = true
			s.Customers++
		}
	}
	out := make([]Sum, 0, len(acc))
	for _, k := range slices.Sorted(maps.Keys(acc)) {
		out = append(out, *acc[k])
	}
	return out
}

// Top returns the n customers of largest revenue, then cost.
func Top(rows []MarginRow, n int) []Sum {
	sums := SumBy(rows, func(r MarginRow) string { return r.CustomerID })
	sort.SliceStable(sums, func(i, j int) bool {
		if sums[i].RevenueMicros != sums[j].RevenueMicros {
			return sums[i].RevenueMicros > sums[j].RevenueMicros
		}
		return sums[i].CostMicros > sums[j].CostMicros
	})
	if len(sums) > n {
		sums = sums[:n]
	}
	return sums
}

// NamePlans replaces the empty plan (no plan in force) by the default plan's name.
func NamePlans(rows []MarginRow, defaultPlan string) {
	for i := range rows {
		if rows[i].Plan == "" {
			rows[i].Plan = defaultPlan
		}
	}
}
