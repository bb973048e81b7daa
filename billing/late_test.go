package billing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/schema"
)

// TestPush_LateAdjustments: after a first push, one customer's invoice is finalized in
// Stripe (the fake refuses its hours) and the clock moves so that the earliest hours are
// beyond billing's MaxAge; a revision then touches those hours. Nothing is dropped: each
// refused or too-old revision is a billing_late_adjustments row and counts in the metric, and
// a second push records nothing more.
func TestPush_LateAdjustments(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := billing.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pusher(t, m, nil).Push(ctx, false); err != nil {
		t.Fatal(err)
	}
	from, to := window()
	// One customer's invoice is final in Stripe for everything before now; the pusher does
	// not know (its own rule is period end + grace): Stripe's refusal must become an adjustment.
	before := w.truth(from, to)
	w.sim.Revise(30 * time.Hour)
	w.collect(t)
	after := w.truth(from, to)
	var finalCus string
	for k, v := range after {
		if before[k] != v && !k.hour.Before(to.Add(-20*time.Hour)) && (finalCus == "" || k.customer < finalCus) {
			finalCus = k.customer
		}
	}
	if finalCus == "" {
		t.Fatal("the revision changed no recent billed value")
	}
	w.fake.SetFinalizedBefore(finalCus, testNow)
	// MaxAge makes hours before to−20h "too old" for every other customer.
	p := w.pusher(t, m, func(c *billing.Config) { c.MaxAge = testNow.Sub(to.Add(-20 * time.Hour)) })
	res, err := p.Push(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	adj, err := schema.LateAdjustments(ctx, w.conn, w.db, from, to)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, a := range adj {
		reasons[a.Reason]++
		if a.Amount != a.NewValue-a.OldValue || a.Amount == 0 {
			t.Errorf("adjustment %+v: amount must be new − old and non-zero", a)
		}
		if a.Reason == schema.LateFinalized && a.CustomerID != finalCus {
			t.Errorf("finalized adjustment for %s, want only %s", a.CustomerID, finalCus)
		}
		if a.Reason == schema.LateTooOld && !a.Hour.Before(to.Add(-20*time.Hour)) {
			t.Errorf("too-old adjustment for hour %s", a.Hour)
		}
	}
	if reasons[schema.LateFinalized] == 0 || reasons[schema.LateTooOld] == 0 {
		t.Fatalf("late adjustments by reason = %v, want both finalized and too_old (result had %d)", reasons, len(res.Late))
	}
	if len(res.Late) != len(adj) {
		t.Fatalf("push reported %d late adjustments, table holds %d", len(res.Late), len(adj))
	}
	var total float64
	for _, s := range []string{schema.SinkMeter, schema.SinkUsageRecord} {
		for _, r := range []string{schema.LateFinalized, schema.LateTooOld} {
			total += testutil.ToFloat64(m.LateAdjustments.WithLabelValues(s, r))
		}
	}
	if int(total) != len(adj) {
		t.Fatalf("%s counted %v, table holds %d", billing.MetricLateAdjustments, total, len(adj))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(""), billing.MetricLateAdjustments); err == nil {
		t.Fatalf("%s is empty in the registry", billing.MetricLateAdjustments)
	}
	again, err := p.Push(ctx, false)
	if err != nil || len(again.Late) != 0 || again.Requests != 0 {
		t.Fatalf("second push: %d late, %d requests, err %v; want nothing", len(again.Late), again.Requests, err)
	}
	if got := testutil.ToFloat64(m.Pending); got != 0 {
		t.Fatalf("%s = %v after all values settled, want 0", billing.MetricPending, got)
	}
	t.Logf("late adjustments: %v", reasons)
}
