package billing_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// testNow is mid-hour, late in a month, so the 72 h window stays inside one period.
var testNow = testfleet.DefaultNow

// world is the whole chain on real parts: the test fleet (simulator over HTTP, client, fresh
// ClickHouse database, clock), the collector into it, accounts imported from a CSV mapping,
// and the recording fake Stripe over HTTP holding the customers, the legacy prices'
// subscriptions and the meters.
type world struct {
	*testfleet.Fleet
	store    *billingstore.Store
	accounts *accountsstore.Store
	stripe   *testworld.Stripe
	cat      *plans.Catalog
	// catalogYAML is cat's text, for child processes.
	catalogYAML string
	// owner maps project → customer; projects of customer, sorted.
	owner    map[string]string
	projects map[string][]string
	// item maps a usage-record subscription item → (customer, price).
	item map[string][2]string
	orgs []sim.Org
}

const projectsPerCustomer = 20

var meterMetrics = map[string]struct{ target, unit, rounding string }{
	"compute_unit_seconds":          {"neon_compute", "CU-hour", ""},
	"root_branch_bytes_month":       {"neon_storage_root", "MB-month", ""},
	"child_branch_bytes_month":      {"neon_storage_child", "MB-month", ""},
	"public_network_transfer_bytes": {"neon_transfer", "GB", "ceil"},
}

var legacyMetrics = map[string]string{"compute_time_seconds": "CU-hour", "data_storage_bytes_hour": "MB-month", "written_data_bytes": "GB"}

func newWorld(t testing.TB, nProjects int) *world {
	t.Helper()
	w := &world{Fleet: testfleet.New(t, testfleet.Options{Projects: nProjects, Seed: 7, Now: testNow}),
		owner: map[string]string{}, projects: map[string][]string{}, item: map[string][2]string{}}
	w.store, w.accounts = billingstore.New(w.Conn, w.DB), accountsstore.New(w.Conn, w.DB)
	for _, o := range w.Sim.Orgs() {
		if o.Plan != "free" { // Neon's free plan has no consumption history
			w.orgs = append(w.orgs, o)
		}
	}
	w.collect(t)

	w.stripe = testworld.NewStripe(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	prices := map[string]string{}
	var yaml strings.Builder
	yaml.WriteString("version: 1\nplans:\n  - name: free\n  - name: pro\n    billing:\n")
	for m, b := range meterMetrics {
		r := ""
		if b.rounding != "" {
			r = ", rounding: " + b.rounding
		}
		fmt.Fprintf(&yaml, "      %s: {meter: %s, unit: %s%s}\n", m, b.target, b.unit, r)
	}
	for m, unit := range legacyMetrics {
		prices[m] = w.stripe.MeteredPrice(t, m)
		fmt.Fprintf(&yaml, "      %s: {price: %s, unit: %s}\n", m, prices[m], unit)
	}
	w.catalogYAML = yaml.String()
	w.cat = testworld.Catalog(t, w.catalogYAML)
	w.stripe.Setup(t, w.cat)
	w.assign(t, prices)
	w.stripe.Fake.SetNow(testNow)
	w.stripe.Fake.ResetRequests()
	return w
}

// assign gives every projectsPerCustomer projects of an org a customer on pro from the period's
// start, and each legacy org's customers a subscription to the legacy prices.
func (w *world) assign(t testing.TB, prices map[string]string) {
	t.Helper()
	periodStart := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var m testworld.Mapping
	for _, o := range w.orgs {
		ids := append([]string(nil), o.ProjectIDs...)
		sort.Strings(ids)
		for i := 0; i < len(ids); i += projectsPerCustomer {
			cus := w.stripe.Customer(t, fmt.Sprintf("%s-%d", o.ID, i))
			for _, p := range ids[i:min(i+projectsPerCustomer, len(ids))] {
				w.owner[p] = cus
				w.projects[cus] = append(w.projects[cus], p)
				m.Add(p, cus, "pro", periodStart)
			}
			if !o.Legacy {
				continue
			}
			var subscribed []string
			for _, name := range slices.Sorted(maps.Keys(legacyMetrics)) {
				subscribed = append(subscribed, prices[name])
			}
			for _, si := range w.stripe.Subscribe(t, cus, periodStart, subscribed...).Items.Data {
				w.item[si.ID] = [2]string{cus, si.Price.ID}
			}
		}
	}
	m.Import(t, w.Conn, w.DB, w.cat, testNow)
}

// collect sweeps the 72 complete hours before the clock for every org.
func (w *world) collect(t testing.TB) {
	t.Helper()
	to := w.Clock.Now().Truncate(time.Hour)
	for _, o := range w.orgs {
		testworld.Collect(t, w.Fleet, o, to.Add(-72*time.Hour), to)
	}
}

// push runs one push of p and fails the test on an error.
func push(t testing.TB, p *billing.Pusher) billing.Result {
	t.Helper()
	res, err := p.Push(context.Background(), false)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return res
}

func (w *world) pusher(t testing.TB, m *billing.Metrics, mod func(*billing.Config)) *billing.Pusher {
	t.Helper()
	// The fake's summaries are consistent at once and the clock does not move: reconcile compares at once.
	cfg := w.stripe.PusherConfig(w.Conn, w.DB, w.cat, w.Clock.Now)
	cfg.Metrics = m
	if mod != nil {
		mod(&cfg)
	}
	return testworld.Pusher(t, cfg)
}

// newMetrics registers billing's metrics on a registry of their own.
func newMetrics(t testing.TB) (*billing.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := billing.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// cell is one (customer, target, hour).
type cell = testworld.Cell

// truth is what billing must push for the world's customers, all on pro, over [from, to).
func (w *world) truth(from, to time.Time) map[cell]int64 {
	pro, _ := w.cat.Plan("pro")
	return testworld.Truth(w.Sim, pro, w.projects, from, to)
}

// revise has the simulator revise the last 30 hours and collects them again. It returns the
// billed truth of [from, to) before and after, and how many cells changed (new, gone or another
// value); none fails the test, which would then prove nothing.
func (w *world) revise(t testing.TB, from, to time.Time) (before, after map[cell]int64, changed int) {
	t.Helper()
	before = w.truth(from, to)
	w.Sim.Revise(30 * time.Hour)
	w.collect(t)
	after = w.truth(from, to)
	for k, v := range after {
		if before[k] != v {
			changed++
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("the revision changed no billed value: the test proves nothing")
	}
	return before, after, changed
}

// stripeHolds returns what the fake holds, per (customer, target, hour), for both sinks.
func (w *world) stripeHolds() map[cell]int64 {
	out := w.stripe.MeterHolds()
	for item, byTS := range w.stripe.Fake.UsageRecords() {
		owner := w.item[item]
		for ts, q := range byTS {
			if q != 0 {
				out[cell{Customer: owner[0], Target: owner[1], Hour: ts}] = q
			}
		}
	}
	return out
}

// ledgerHolds returns the values the ledger records as pushed.
func (w *world) ledgerHolds(t testing.TB, from, to time.Time) map[cell]int64 {
	return testworld.LedgerHolds(t, w.store, from, to)
}

// window returns the hours a push with the world's settings covers.
func window() (time.Time, time.Time) { return testworld.PushWindow(testNow) }

// billingRequests returns the fake's logged requests that send values.
func billingRequests(rs []stripefake.Request) []stripefake.Request {
	var out []stripefake.Request
	for _, r := range rs {
		if r.Method == "POST" && (r.Path == "/v1/billing/meter_events" || strings.HasSuffix(r.Path, "/usage_records")) {
			out = append(out, r)
		}
	}
	return out
}

// identifierValues checks that no identifier (or idempotency key) was ever sent with two
// different values, and returns how many distinct identifiers were sent.
func identifierValues(t testing.TB, rs []stripefake.Request) int {
	t.Helper()
	seen := map[string]string{}
	for _, r := range billingRequests(rs) {
		id, v := r.Form.Get("identifier"), r.Form.Get("payload[value]")
		if id == "" {
			id, v = r.IdempotencyKey, r.Form.Get("quantity")
		}
		if id == "" || r.IdempotencyKey != id && r.Form.Get("identifier") != "" {
			t.Fatalf("request %s %s: identifier %q, Idempotency-Key %q", r.Method, r.Path, id, r.IdempotencyKey)
		}
		if prev, ok := seen[id]; ok && prev != v {
			t.Fatalf("identifier %s sent with values %s and %s", id, prev, v)
		}
		seen[id] = v
	}
	return len(seen)
}

// mergeLedger runs now the merge ClickHouse runs on its own schedule: billing_ledger (a
// ReplacingMergeTree) then keeps only the newest row of each key.
func (w *world) mergeLedger(t testing.TB) {
	t.Helper()
	if err := w.Conn.Exec(context.Background(), "OPTIMIZE TABLE "+w.DB+".billing_ledger FINAL"); err != nil {
		t.Fatal(err)
	}
}

// lateAdjustments reads billing_late_adjustments of hours in [from, to) the way finance does,
// straight from the table (the product itself never reads it back).
func (w *world) lateAdjustments(t testing.TB, from, to time.Time) []billing.LateAdjustment {
	t.Helper()
	rows, err := w.Conn.Query(context.Background(), `SELECT customer_id, target, hour, toString(sink), revision, metric,
    old_value, new_value, amount, toString(reason), run_id
FROM `+w.DB+`.billing_late_adjustments FINAL
WHERE hour >= ? AND hour < ?
ORDER BY customer_id, target, hour, sink, revision`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []billing.LateAdjustment
	for rows.Next() {
		var a billing.LateAdjustment
		var sink, reason string
		if err := rows.Scan(&a.CustomerID, &a.Target, &a.Hour, &sink, &a.Revision, &a.Metric, &a.OldValue, &a.NewValue, &a.Amount, &reason, &a.RunID); err != nil {
			t.Fatal(err)
		}
		a.Hour, a.Sink, a.Reason = a.Hour.UTC(), billing.SinkKind(sink), billing.LateReason(reason)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mustDesired is billing.Desired for usage that cannot overflow.
func mustDesired(t testing.TB, usage []billing.HourlyUsage, tl *accounts.Timelines, cat *plans.Catalog, from, to time.Time) []billing.Value {
	t.Helper()
	v, err := billing.Desired(usage, tl, cat, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
