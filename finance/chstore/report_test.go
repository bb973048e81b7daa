package chstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/finance"
)

// TestReportCustomer_EqualsFakeStripe: the customer report's billed units and what it says
// Stripe holds equal, per meter, what the recording fake Stripe holds for the customer after a
// real push, a stray event and a reconcile.
func TestReportCustomer_EqualsFakeStripe(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	from, to, err := finance.Period("2026-11")
	if err != nil {
		t.Fatal(err)
	}
	r, err := finance.Customer(ctx, w.store, w.cusPro, from, to)
	if err != nil {
		t.Fatal(err)
	}
	fake := w.fakeHolds(w.cusPro)
	if len(fake) == 0 || len(r.Held) == 0 {
		t.Fatalf("nothing billed: fake %v, report %+v", fake, r.Held)
	}
	confirmed := map[string]int64{}
	for _, b := range r.Billed {
		confirmed[b.Target] = b.Confirmed
		if b.Value != b.Confirmed {
			t.Errorf("%s: ledger value %d, confirmed %d", b.Target, b.Value, b.Confirmed)
		}
	}
	for _, h := range r.Held {
		if h.Stripe != fake[h.Target] {
			t.Errorf("report says Stripe holds %d of %s, the fake holds %d", h.Stripe, h.Target, fake[h.Target])
		}
		delete(fake, h.Target)
	}
	for target, v := range fake {
		if v != 0 {
			t.Errorf("the fake holds %d of %s, which the report lacks", v, target)
		}
	}
	if got := confirmed["neon_compute"] + 3; got != w.fakeHolds(w.cusPro)["neon_compute"] {
		t.Errorf("the stray 3 units must show only as drift: ledger %d, fake %d", confirmed["neon_compute"], w.fakeHolds(w.cusPro)["neon_compute"])
	}
	if len(r.Drift) != 1 || r.Drift[0].Drift != 3 || r.Drift[0].Target != "neon_compute" {
		t.Errorf("drift rows = %+v, want the one stray +3", r.Drift)
	}
	if len(r.Projects) != 5 || r.Projects[0].CustomerID != w.cusPro || r.Projects[0].Plan != "pro" {
		t.Errorf("projects = %+v", r.Projects)
	}
	for _, tot := range r.Totals() {
		if want := w.handRaw(w.cusPro, tot.Metric); tot.Raw != want {
			t.Errorf("usage of %s = %d, the simulator says %d", tot.Metric, tot.Raw, want)
		}
	}
	other, err := finance.Customer(ctx, w.store, w.cusFree, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Billed) != 0 || len(other.Drift) != 0 || len(w.fakeHolds(w.cusFree)) != 0 && sum(w.fakeHolds(w.cusFree)) != 0 {
		t.Errorf("the free customer was billed: ledger %+v, fake %v", other.Billed, w.fakeHolds(w.cusFree))
	}
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// TestMargin_EqualsHandComputation: cost, revenue and margin per customer computed in
// ClickHouse equal a hand computation from the simulator's ground truth: cost = floor(raw ×
// price ÷ divisor) per metric and month, revenue = billing's units of the month × the plan's
// price; the free customer is pure cost.
func TestMargin_EqualsHandComputation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	rows, err := w.store.Margin(ctx, "", w.from, w.to)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]finance.MarginRow{}
	for _, r := range rows {
		if got[r.CustomerID] == nil {
			got[r.CustomerID] = map[string]finance.MarginRow{}
		}
		if r.Month != time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) {
			t.Errorf("row of month %s", r.Month)
		}
		got[r.CustomerID][r.Metric] = r
	}
	// Hand prices (micro-units per unit) and units (raw per unit), from worldCosts and testworld.MeterCatalog.
	cost := map[string][2]uint64{"compute_unit_seconds": {160_000, 3600}, "root_branch_bytes_month": {350_000, 744e9}, "public_network_transfer_bytes": {90_000, 1e9}}
	for _, cus := range []string{w.cusPro, w.cusFree} {
		var wantCost, wantRevenue, gotMargin int64
		for _, m := range v2Metrics {
			raw := w.handRaw(cus, m)
			var c int64
			if p, ok := cost[m]; ok {
				c = handCost(raw, p[0], p[1])
			}
			rev := int64(0)
			if cus == w.cusPro {
				rev = handRevenue(m, raw)
			}
			r := got[cus][m]
			if r.Raw != raw || r.CostMicros != c || r.RevenueMicros != rev {
				t.Errorf("%s %s: raw %d cost %d revenue %d; by hand raw %d cost %d revenue %d", cus, m, r.Raw, r.CostMicros, r.RevenueMicros, raw, c, rev)
			}
			wantCost, wantRevenue, gotMargin = wantCost+c, wantRevenue+rev, gotMargin+r.MarginMicros()
		}
		if gotMargin != wantRevenue-wantCost || wantCost == 0 {
			t.Errorf("%s: margin %d, by hand %d − %d", cus, gotMargin, wantRevenue, wantCost)
		}
		if cus == w.cusFree && gotMargin >= 0 {
			t.Errorf("the free customer must be pure cost, margin %d", gotMargin)
		}
	}
	// The same numbers through Go's cost table (the API plans simulate uses).
	for _, m := range v2Metrics {
		r := got[w.cusPro][m]
		if c, _ := w.costs.Cost(m, r.Raw); c != r.CostMicros {
			t.Errorf("%s: Costs.Cost = %d, SQL %d", m, c, r.CostMicros)
		}
	}
}

// handRevenue is pro's revenue of a month's raw usage: compute floors to CU-hours at 0.26,
// transfer rounds up to GB at 0.15, root storage is billed but unpriced.
func handRevenue(metric string, raw uint64) int64 {
	switch metric {
	case "compute_unit_seconds":
		return int64(raw/3600) * 260_000
	case "public_network_transfer_bytes":
		return int64((raw+1e9-1)/1e9) * 150_000
	}
	return 0
}
