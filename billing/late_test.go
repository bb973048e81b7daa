package billing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/plans"
)

// TestPush_LateAdjustments: after a first push, one customer's invoice is finalized in
// Stripe (the fake refuses its hours) and the clock moves so that the earliest hours are
// beyond billing's MaxAge; a revision then touches those hours. Nothing is dropped: each
// refused or too-old revision is a billing_late_adjustments row and counts in the metric, and
// a second push records nothing more.
func TestPush_LateAdjustments(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	m, reg := newMetrics(t)
	push(t, w.pusher(t, m, nil))
	from, to := window()
	// One customer's invoice is final in Stripe for everything before now; the pusher does
	// not know (its own rule is period end + grace): Stripe's refusal must become an adjustment.
	before, after, _ := w.revise(t, from, to)
	var finalCus string
	for k, v := range after {
		if before[k] != v && !k.Hour.Before(to.Add(-20*time.Hour)) && (finalCus == "" || k.Customer < finalCus) {
			finalCus = k.Customer
		}
	}
	if finalCus == "" {
		t.Fatal("the revision changed no recent billed value")
	}
	w.stripe.Fake.SetFinalizedBefore(finalCus, testNow)
	// MaxAge makes hours before to−20h "too old" for every other customer.
	p := w.pusher(t, m, func(c *billing.Config) { c.MaxAge = testNow.Sub(to.Add(-20 * time.Hour)) })
	res := push(t, p)
	adj := w.lateAdjustments(t, from, to)
	reasons := map[billing.LateReason]int{}
	for _, a := range adj {
		reasons[a.Reason]++
		if a.Amount != a.NewValue-a.OldValue || a.Amount == 0 {
			t.Errorf("adjustment %+v: amount must be new − old and non-zero", a)
		}
		if a.Reason == billing.LateFinalized && a.CustomerID != finalCus {
			t.Errorf("finalized adjustment for %s, want only %s", a.CustomerID, finalCus)
		}
		if a.Reason == billing.LateTooOld && !a.Hour.Before(to.Add(-20*time.Hour)) {
			t.Errorf("too-old adjustment for hour %s", a.Hour)
		}
	}
	if reasons[billing.LateFinalized] == 0 || reasons[billing.LateTooOld] == 0 {
		t.Fatalf("late adjustments by reason = %v, want both finalized and too_old (result had %d)", reasons, len(res.Late))
	}
	if len(res.Late) != len(adj) {
		t.Fatalf("push reported %d late adjustments, table holds %d", len(res.Late), len(adj))
	}
	var total float64
	for _, s := range []billing.SinkKind{billing.SinkMeter, billing.SinkUsageRecord} {
		for _, r := range []billing.LateReason{billing.LateFinalized, billing.LateTooOld} {
			total += testutil.ToFloat64(m.LateAdjustments.WithLabelValues(string(s), string(r)))
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

// TestPush_LateBaseSurvivesCrashedIntent: Stripe refused a revision as final (late row: value
// L recorded, Stripe still holds C), then a later revision's intent was written and the
// process died before its outcome. When that hour is late again, the adjustment must be
// computed against L (what Stripe plus the earlier adjustment account for), not against C:
// otherwise finance credits L−C twice or never reverses it. The adjustments of the key must
// sum to desired − Stripe's value. The ledger is merged before each push (a ReplacingMergeTree
// merge keeps only a key's newest row, whenever the server runs it): the base must not depend
// on the older rows.
func TestPush_LateBaseSurvivesCrashedIntent(t *testing.T) {
	w := newWorld(t, 40)
	ctx := context.Background()
	push(t, w.pusher(t, nil, nil))
	from, to := window()
	rows, err := w.store.Ledger(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var r billing.LedgerRow
	for _, x := range rows {
		if x.Status == billing.LedgerPushed && x.Sink == billing.SinkMeter && x.Value > 0 {
			r = x
			break
		}
	}
	if r.CustomerID == "" {
		t.Fatal("no pushed meter value to build on")
	}
	v := r.Value // what ClickHouse says and Stripe holds
	if r.Accounted != v {
		t.Fatalf("pushed row %+v accounts for %d, want its value %d", r, r.Accounted, v)
	}
	k := billing.Key{CustomerID: r.CustomerID, Target: r.Target, Sink: r.Sink, Hour: r.Hour}
	// The rows the pusher writes: each carries what is accounted for after its step.
	late := r
	late.Revision, late.Value, late.ConfirmedValue, late.Status, late.Version = r.Revision+1, v+5, v, billing.LedgerLate, 2*uint64(r.Revision+1)+1
	late.Identifier, late.Accounted = billing.Identifier(k, late.Revision), v+5
	intent := r
	intent.Revision, intent.Value, intent.ConfirmedValue, intent.Status, intent.Version = r.Revision+2, v, v, billing.LedgerIntent, 2*uint64(r.Revision+2)
	intent.Identifier, intent.Accounted = billing.Identifier(k, intent.Revision), v+5
	if err := w.store.InsertLateAdjustments(ctx, []billing.LateAdjustment{{CustomerID: k.CustomerID, Target: k.Target, Hour: k.Hour,
		Sink: k.Sink, Revision: late.Revision, Metric: r.Metric, PeriodStart: plans.PeriodStart(k.Hour), PeriodEnd: plans.PeriodEnd(k.Hour),
		OldValue: v, NewValue: v + 5, Amount: 5, Reason: billing.LateFinalized, DetectedAt: testNow, RunID: "earlier"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.InsertLedger(ctx, []billing.LedgerRow{late, intent}); err != nil {
		t.Fatal(err)
	}
	w.mergeLedger(t)
	p := w.pusher(t, nil, func(c *billing.Config) {
		c.Finalized = func(cus string, h time.Time) bool { return cus == k.CustomerID && h.Equal(k.Hour) }
	})
	push(t, p)
	w.mergeLedger(t)
	if rows, err = w.store.Ledger(ctx, k.Hour, k.Hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, x := range rows {
		if x.CustomerID == k.CustomerID && x.Target == k.Target && x.Sink == k.Sink && (x.Status != billing.LedgerLate || x.Accounted != v) {
			t.Fatalf("after the late step the ledger holds %+v, want a late row accounting for %d", x, v)
		}
	}
	adj := w.lateAdjustments(t, k.Hour, k.Hour.Add(time.Hour))
	var sum int64
	for _, a := range adj {
		if a.CustomerID == k.CustomerID && a.Target == k.Target && a.Sink == k.Sink {
			sum += a.Amount
		}
	}
	if held := w.stripe.Fake.MeterWindows(k.Target)[k.CustomerID][k.Hour].Value; held != v || sum != v-held {
		t.Fatalf("Stripe holds %d, desired %d, late adjustments sum to %d (%+v); want them to sum to %d", held, v, sum, adj, v-held)
	}
}

// TestReconcile_RepairRespectsFinalized: reconcile --repair of drifting hours whose invoice is
// already final must not send them (Stripe would accept a meter event it never invoices, and
// the ledger would say pushed): they become late adjustments, as in a push.
func TestReconcile_RepairRespectsFinalized(t *testing.T) {
	w := newWorld(t, 40)
	ctx := context.Background()
	push(t, w.pusher(t, nil, nil))
	from, to := window()
	w.revise(t, from, to)
	p := w.pusher(t, nil, func(c *billing.Config) { c.Finalized = func(string, time.Time) bool { return true } })
	w.stripe.Fake.ResetRequests()
	rec, err := p.Reconcile(ctx, from, to, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Drift) == 0 || rec.Repair == nil {
		t.Fatalf("reconcile found no drift after a revision (%d compared)", rec.Compared)
	}
	if n := len(billingRequests(w.stripe.Fake.Requests())); n != 0 {
		t.Fatalf("repair sent %d values into finalized invoices, want 0", n)
	}
	adj := w.lateAdjustments(t, plans.PeriodStart(from), to)
	if len(adj) == 0 || len(rec.Repair.Late) != len(adj) {
		t.Fatalf("repair recorded %d late adjustments (reported %d), want them all", len(adj), len(rec.Repair.Late))
	}
}
