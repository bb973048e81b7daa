package billing_test

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// TestPush_IdentifierRefusedAfterKeyExpiryIsAccounted: meter events reach Stripe but their
// answers are lost, so their intents stay pending; Stripe then forgets the idempotency keys (24
// h+) while still holding the identifiers. The next push resends the same identifiers and Stripe
// refuses them as it really words it (400, "An event already exists with identifier …", no
// code): the values are accounted as pushed under the same revision, nothing fails, nothing is
// re-sent as a new revision, and Stripe holds exactly the truth.
func TestPush_IdentifierRefusedAfterKeyExpiryIsAccounted(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	w.stripe.Fake.Inject(stripefake.Fault{Method: "POST", Path: "/v1/billing/meter_events", Drop: stripefake.DropAfter, Times: 40})
	first := push(t, w.pusher(t, nil, func(c *billing.Config) { c.MaxAttempts = 1 }))
	// net/http itself may resend a request carrying an Idempotency-Key on a reused connection
	// that broke (the fake then replays it), so a few lost answers can come back on their own.
	lost := first.Pending
	if lost < 30 || w.stripe.Fake.PendingFaults() != 0 {
		t.Fatalf("first push left %d values pending (%d faults unused), want about 40", lost, w.stripe.Fake.PendingFaults())
	}
	w.stripe.Fake.ExpireIdempotencyKeys()
	w.stripe.Fake.ResetRequests()
	p := w.pusher(t, nil, nil)
	res := push(t, p)
	refused := 0
	for _, r := range billingRequests(w.stripe.Fake.Requests()) {
		if r.Status == 400 {
			refused++
		}
	}
	if refused != lost || res.Requests != lost || res.Pushed != lost || res.Failed != 0 || res.Pending != 0 {
		t.Fatalf("resume: %d refused as existing, %d requests, %d pushed, %d failed, %d pending; want %d, %d, %d, 0, 0",
			refused, res.Requests, res.Pushed, res.Failed, res.Pending, lost, lost, lost)
	}
	from, to := window()
	truth := w.truth(from, to)
	testworld.DiffCells(t, "fake Stripe", w.stripeHolds(), truth)
	testworld.DiffCells(t, "ledger", w.ledgerHolds(t, from, to), truth)
	rows, err := w.store.Ledger(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Revision != 1 {
			t.Fatalf("%s %s %s went to revision %d: a value Stripe holds was re-sent", r.CustomerID, r.Target, r.Hour, r.Revision)
		}
	}
	w.stripe.Fake.ResetRequests()
	if again, err := p.Push(ctx, false); err != nil || again.Requests != 0 {
		t.Fatalf("next push: %d requests, err %v; want none", again.Requests, err)
	}
}

// TestPush_UnsendableHeldAlertingAndReleased: a legacy-price customer whose subscription is
// cancelled has no subscription item for its usage records. The push records its values as
// unsendable (ledger status, metric, counted in the result) without failing; the next pushes
// write nothing and send nothing for them (no new revisions every cycle); once the customer
// subscribes again, the next push sends them and Stripe holds the truth.
func TestPush_UnsendableHeldAlertingAndReleased(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	cus, items := w.legacyCustomer(t)
	sub, err := w.stripe.Client.SubscriptionItems.Get(items[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.stripe.Client.Subscriptions.Cancel(sub.Subscription, nil); err != nil {
		t.Fatal(err)
	}
	m, _ := newMetrics(t)
	from, to := window()
	held := 0
	for k := range w.truth(from, to) {
		if k.Customer == cus && strings.HasPrefix(k.Target, "price_") {
			held++
		}
	}
	if held == 0 {
		t.Fatal("the customer has no usage-record values: the test proves nothing")
	}
	p := w.pusher(t, m, nil)
	res, err := p.Push(ctx, false)
	if err != nil || res.Unsendable != held || res.Failed != 0 || res.Pending != 0 {
		t.Fatalf("first push: %d unsendable, %d failed, %d pending, err %v; want %d, 0, 0, nil", res.Unsendable, res.Failed, res.Pending, err, held)
	}
	gauge := func() float64 {
		return testutil.ToFloat64(m.Unsendable.WithLabelValues(string(billing.SinkUsageRecord)))
	}
	if gauge() != float64(held) {
		t.Fatalf("%s{sink=usage_record} = %v, want %d", billing.MetricUnsendable, gauge(), held)
	}
	if statuses := w.ledgerStatuses(t, cus); statuses[billing.LedgerUnsendable] != held || statuses[billing.LedgerFailed] != 0 {
		t.Fatalf("ledger of %s: %v, want %d unsendable and none failed", cus, statuses, held)
	}
	rowsBefore := w.ledgerRowCount(t)

	for cycle := range 2 {
		w.stripe.Fake.ResetRequests()
		res, err := p.Push(ctx, false)
		if err != nil || res.Unsendable != held || res.Requests != 0 || len(billingRequests(w.stripe.Fake.Requests())) != 0 {
			t.Fatalf("push %d while held: %d unsendable, %d requests, err %v; want %d, 0, nil", cycle+2, res.Unsendable, res.Requests, err, held)
		}
	}
	if n := w.ledgerRowCount(t); n != rowsBefore {
		t.Fatalf("pushes while held wrote %d ledger rows, want none", n-rowsBefore)
	}

	var again []*stripe.SubscriptionItemsParams
	for _, id := range items {
		si, err := w.stripe.Client.SubscriptionItems.Get(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, &stripe.SubscriptionItemsParams{Price: stripe.String(si.Price.ID)})
	}
	newSub, err := w.stripe.Client.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus), Items: again,
		BackdateStartDate: stripe.Int64(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range newSub.Items.Data {
		w.item[si.ID] = [2]string{cus, si.Price.ID}
	}
	res, err = p.Push(ctx, false)
	if err != nil || res.Unsendable != 0 || res.Pushed != held {
		t.Fatalf("push after the new subscription: %d unsendable, %d pushed, err %v; want 0, %d", res.Unsendable, res.Pushed, err, held)
	}
	if gauge() != 0 {
		t.Fatalf("%s = %v after release, want 0", billing.MetricUnsendable, gauge())
	}
	testworld.DiffCells(t, "fake Stripe after release", w.stripeHolds(), w.truth(from, to))
}

// legacyCustomer returns the first customer with usage-record subscription items, and them.
func (w *world) legacyCustomer(t testing.TB) (string, []string) {
	t.Helper()
	by := map[string][]string{}
	for item, owner := range w.item {
		by[owner[0]] = append(by[owner[0]], item)
	}
	cs := slices.Sorted(maps.Keys(by))
	if len(cs) == 0 {
		t.Fatal("no legacy customer in the world")
	}
	return cs[0], by[cs[0]]
}

// ledgerStatuses counts the latest ledger status of each of the customer's keys.
func (w *world) ledgerStatuses(t testing.TB, cus string) map[billing.LedgerStatus]int {
	t.Helper()
	rows, err := w.store.Ledger(context.Background(), testNow.AddDate(0, -1, 0), testNow)
	if err != nil {
		t.Fatal(err)
	}
	out := map[billing.LedgerStatus]int{}
	for _, r := range rows {
		if r.CustomerID == cus {
			out[r.Status]++
		}
	}
	return out
}

// ledgerRowCount counts every row billing_ledger holds (every step, not only the latest).
func (w *world) ledgerRowCount(t testing.TB) uint64 {
	t.Helper()
	var n uint64
	if err := w.Conn.QueryRow(context.Background(), "SELECT count() FROM "+w.DB+".billing_ledger").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPush_HostileHourIsAnErrorNotACredit: one project's usage holds two hours near int64 max
// (past any collection bound). Their running total passes 2^64; a wrapped sum once became a
// −2.5 × 10¹⁵ CU-hour Stripe credit. Now the dry run and the push both stop with an error naming
// the customer, the metric and the hour, and nothing reaches Stripe.
func TestPush_HostileHourIsAnErrorNotACredit(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	from, to := window()
	var cus, project, org string
	for _, o := range w.orgs {
		if !o.Legacy && len(o.ProjectIDs) > 0 {
			project, org = o.ProjectIDs[0], o.ID
			cus = w.owner[project]
			break
		}
	}
	h1, h2 := to.Add(-10*time.Hour), to.Add(-5*time.Hour)
	// Written straight to the table, as data that got past (or predates) the collector's bounds.
	batch, err := w.Conn.PrepareBatch(ctx, "INSERT INTO "+w.DB+".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []time.Time{h1, h2} {
		if err := batch.Append(org, project, "compute_unit_seconds", h, uint64(math.MaxInt64-1000), "", "", testNow, uint64(1)<<62); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	w.stripe.Fake.ResetRequests()
	p := w.pusher(t, nil, nil)
	for _, dry := range []bool{true, false} {
		res, err := p.Push(ctx, dry)
		for _, a := range res.Actions {
			if a.Units < -1e9 || a.Units > 1e12 {
				t.Errorf("dry run %v: %s %s %s would send %d units", dry, a.CustomerID, a.Target, a.Hour.Format(time.RFC3339), a.Units)
			}
		}
		if err == nil {
			t.Fatalf("dry run %v: no error for a running total past int64 (%d actions)", dry, len(res.Actions))
		}
		msg := err.Error()
		hourNamed := strings.Contains(msg, h1.Format(time.RFC3339)) || strings.Contains(msg, h2.Format(time.RFC3339))
		if !strings.Contains(msg, cus) || !strings.Contains(msg, "compute_unit_seconds") || !hourNamed {
			t.Fatalf("dry run %v: error %q must name customer %s, metric compute_unit_seconds and hour %s or %s", dry, msg, cus, h1.Format(time.RFC3339), h2.Format(time.RFC3339))
		}
	}
	if n := len(billingRequests(w.stripe.Fake.Requests())); n != 0 {
		t.Fatalf("%d values reached Stripe", n)
	}
	if n := w.ledgerRowCount(t); n != 0 {
		t.Fatalf("%d ledger rows written", n)
	}
	_ = from
}

// A push whose context is cancelled (serve's shutdown) counts as stopped, not as a failure: the
// failure rate an alert reads must not rise at every deploy.
func TestPush_CancelledCountsAsStopped(t *testing.T) {
	w := newWorld(t, 10)
	m, _ := newMetrics(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.pusher(t, m, nil).Push(ctx, false); err == nil {
		t.Fatal("a push with a cancelled context succeeded: the test proves nothing")
	}
	if got := testutil.ToFloat64(m.Runs.WithLabelValues(billing.ResultStopped)); got != 1 {
		t.Fatalf("stopped runs: %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.Runs.WithLabelValues(billing.ResultFailure)); got != 0 {
		t.Fatalf("failed runs: %v; want 0", got)
	}
}
