package enforcement_test

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/plans"
)

// TestBreaker_DataSpikeActsOnAtMostTheCap puts over a third of the fleet over a hard limit at
// once: the breaker trips, at most the cap is suspended, the rest wait, and the metric says so.
func TestBreaker_DataSpikeActsOnAtMostTheCap(t *testing.T) {
	f, usage, limit, reg, r := spikeFleet(t)
	rep, err := r.Cycle(context.Background(), enforcement.CycleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	over := 0
	for _, u := range usage {
		if u >= limit {
			over++
		}
	}
	wantCap := int(math.Ceil(0.10 * float64(rep.Fleet)))
	if float64(over) < 0.3*float64(rep.Fleet) || rep.Enforcing != over || rep.BreakerCap != wantCap || !rep.BreakerTripped {
		t.Fatalf("over %d of %d, enforcing %d, cap %d (want %d), tripped %v", over, rep.Fleet, rep.Enforcing, rep.BreakerCap, wantCap, rep.BreakerTripped)
	}
	suspended, deferred := 0, 0
	for id := range usage {
		if ps, _ := f.Sim.Project(id); ps.QuotaSuspended {
			suspended++
		}
	}
	for _, row := range rep.Rows {
		if row.Outcome == "deferred" {
			deferred++
		}
	}
	if suspended != wantCap || deferred != over-wantCap {
		t.Fatalf("%d projects suspended and %d deferred, want the cap %d and %d", suspended, deferred, wantCap, over-wantCap)
	}
	if got := testutil.ToFloat64(mustGauge(t, reg, "neonmeter_enforcement_breaker_tripped")); got != 1 {
		t.Fatalf("neonmeter_enforcement_breaker_tripped = %v, want 1", got)
	}
	if w := f.Sim.Stats().Wakes; w != 0 {
		t.Fatalf("%d wakes", w)
	}
}

// spikeFleet is the breaker tests' data spike: 80 projects, all on free, whose hard limit puts
// 40 % of them at or over it at once, and a reconciler whose breaker caps actions at 10 %.
func spikeFleet(t *testing.T) (*fixture, map[string]uint64, uint64, *prometheus.Registry, *enforcement.Reconciler) {
	t.Helper()
	f := newFixture(t, 80)
	f.collect(t)
	usage := f.usage(t)
	var vals []uint64
	planOf := map[string]string{}
	for id, u := range usage {
		vals = append(vals, u)
		planOf[id] = "free"
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	limit := vals[len(vals)*6/10] // 40 % of the fleet at or over
	cat := catalog(t, limit, limit, limit, limit)
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), planOf)
	pol := testPolicy()
	pol.MaxPercent, pol.MaxActions = 10, 100
	reg := prometheus.NewRegistry()
	return f, usage, limit, reg, f.reconciler(t, cat, pol, reg)
}
