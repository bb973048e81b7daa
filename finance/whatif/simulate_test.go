package whatif_test

import (
	"context"
	"maps"
	"testing"

	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/finance/whatif"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// expected counts, from the ground truth and a limit, each plan's projects over (suspended or
// throttled) and warned (80 % and up), per customer and for the plan (customer *).
func (w *world) expected(plan string, limit uint64) (over, warned map[string]int64) {
	over, warned = map[string]int64{}, map[string]int64{}
	for id, u := range w.compute {
		if w.planOf[id] != plan {
			continue
		}
		if u >= limit {
			over[w.ownerOf[id]]++
			over[whatif.AllCustomers]++
		}
		if u*100 >= 80*limit {
			warned[w.ownerOf[id]]++
			warned[whatif.AllCustomers]++
		}
	}
	return over, warned
}

// TestSimulate_KnownAnswers: on a month of real parts (collector, accounts, an enforcement cycle
// against the simulator, a billing push to the fake Stripe), plans simulate with the current
// catalog reproduces what billing and enforcement did exactly, and with the free tier halved
// changes exactly what the ground truth says; it writes nothing.
func TestSimulate_KnownAnswers(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("current catalog reproduces what happened", func(t *testing.T) {
		before := w.rowCounts(t)
		rep, err := whatif.Simulate(ctx, w.config(w.cat), period)
		if err != nil {
			t.Fatal(err)
		}
		if after := w.rowCounts(t); !maps.Equal(before, after) {
			t.Errorf("simulate wrote rows: before %v, after %v", before, after)
		}
		for _, l := range rep.Lines {
			if l.Change != 0 {
				t.Errorf("current catalog changes %+v", l)
			}
		}
		for meter, metric := range map[string]string{"neon_compute": "compute_unit_seconds", "neon_transfer": "public_network_transfer_bytes"} {
			held := w.stripeUnits(meter)
			if len(held) == 0 {
				t.Fatalf("the fake Stripe holds nothing for %s", meter)
			}
			for cus, units := range held {
				if l := line(rep, "pro", cus, metric); l.Actual != units || l.Simulated != units {
					t.Errorf("customer %s %s: Stripe holds %d, report %+v", cus, metric, units, l)
				}
			}
		}
		checkCounts(t, rep, "free", whatif.MeasureSuspended, true, w.expectedOver("free", w.free))
		checkCounts(t, rep, "free", whatif.MeasureWarned, true, w.expectedWarned("free", w.free))
		checkCounts(t, rep, "pro", whatif.MeasureThrottled, true, w.expectedOver("pro", w.pro))
		checkCounts(t, rep, "pro", whatif.MeasureWarned, true, w.expectedWarned("pro", w.pro))
	})

	t.Run("margin", func(t *testing.T) {
		cfg := w.config(w.cat)
		draft := testworld.Catalog(t, catalogYAML(w.free/2, w.pro))
		cur, err := finance.ParseCosts("costs.yaml", []byte(costsYAML), w.cat)
		if err != nil {
			t.Fatal(err)
		}
		dft, err := finance.ParseCosts("costs.yaml", []byte(costsYAML), draft)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Draft, cfg.Money = draft, &whatif.Money{Current: cur, Draft: dft}
		rep, err := whatif.Simulate(ctx, cfg, period)
		if err != nil {
			t.Fatal(err)
		}
		w.checkMargin(t, rep)
	})

	t.Run("free tier halved", func(t *testing.T) {
		draft := testworld.Catalog(t, catalogYAML(w.free/2, w.pro))
		rep, err := whatif.Simulate(ctx, w.config(draft), period)
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, rep, "free", whatif.MeasureSuspended, true, w.expectedOver("free", w.free))
		checkCounts(t, rep, "free", whatif.MeasureSuspended, false, w.expectedOver("free", w.free/2))
		checkCounts(t, rep, "free", whatif.MeasureWarned, false, w.expectedWarned("free", w.free/2))
		if over, was := w.expectedOver("free", w.free/2)[whatif.AllCustomers], w.expectedOver("free", w.free)[whatif.AllCustomers]; over <= was {
			t.Fatalf("the world is too small: halving the free tier suspends %d projects, not more than %d", over, was)
		}
		for _, l := range rep.Lines {
			if l.Plan == "pro" && l.Change != 0 {
				t.Errorf("the draft changes only free, yet %+v", l)
			}
		}
	})
}

// costsYAML prices Neon's compute at 0.16 per CU-hour and transfer at 0.10 per GB, and pro's
// meters at 0.26 per CU-hour and 0.15 per GB.
const costsYAML = `version: 1
currency: usd
neon_plan: scale
neon:
  compute_unit_seconds:          {unit: CU-hour, price: 0.16}
  public_network_transfer_bytes: {unit: GB, price: 0.10}
plans:
  pro:
    neon_compute:  0.26
    neon_transfer: 0.15
`

// checkMargin compares every customer's revenue, Neon cost and margin with a hand computation:
// what the fake Stripe holds times pro's prices, and each project's collected usage times Neon's
// prices (floored per project, in micro-dollars).
func (w *world) checkMargin(t *testing.T, rep *whatif.Report) {
	t.Helper()
	compute, transfer := w.stripeUnits("neon_compute"), w.stripeUnits("neon_transfer")
	revenue, cost, plan := map[string]int64{}, map[string]int64{}, map[string]string{}
	for id, cus := range w.ownerOf {
		plan[cus] = w.planOf[id]
		cost[cus] += int64(w.compute[id]*160_000/3600 + w.transfer[id]*100_000/1_000_000_000)
	}
	for cus := range plan {
		revenue[cus] = compute[cus]*260_000 + transfer[cus]*150_000
	}
	var free, pro int
	for cus, p := range plan {
		r, c, m := line(rep, p, cus, whatif.MeasureRevenue), line(rep, p, cus, whatif.MeasureCost), line(rep, p, cus, whatif.MeasureMargin)
		if r.Actual != revenue[cus] || r.Simulated != revenue[cus] || c.Actual != cost[cus] || m.Actual != revenue[cus]-cost[cus] ||
			m.Simulated != revenue[cus]-cost[cus] || !m.Micros {
			t.Errorf("customer %s (%s): revenue %+v cost %+v margin %+v; want revenue %d cost %d", cus, p, r, c, m, revenue[cus], cost[cus])
		}
		if p == "free" && cost[cus] > 0 && revenue[cus] == 0 {
			free++
		}
		if p == "pro" && revenue[cus] > 0 {
			pro++
		}
	}
	if free == 0 || pro == 0 {
		t.Fatalf("the world is too small: %d free customers with cost, %d pro with revenue", free, pro)
	}
}

func (w *world) expectedOver(plan string, limit uint64) map[string]int64 {
	over, _ := w.expected(plan, limit)
	return over
}

func (w *world) expectedWarned(plan string, limit uint64) map[string]int64 {
	_, warned := w.expected(plan, limit)
	return warned
}

// checkCounts compares a plan's counts of measure, per customer and in total, with want; actual
// picks the column.
func checkCounts(t *testing.T, rep *whatif.Report, plan, measure string, actual bool, want map[string]int64) {
	t.Helper()
	if want[whatif.AllCustomers] == 0 {
		t.Fatalf("the world is too small: no %s project is %s", plan, measure)
	}
	got := map[string]int64{}
	for _, l := range rep.Lines {
		if l.Plan == plan && l.Measure == measure {
			v := l.Simulated
			if actual {
				v = l.Actual
			}
			if v != 0 {
				got[l.Customer] = v
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s %s (actual %v): got %v, want %v", plan, measure, actual, got, want)
	}
}
