package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testfleet"
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
	store     *billingstore.Store
	accounts  *accountsstore.Store
	fake      *stripefake.Server
	stripeURL string
	sc        *client.API
	cat       *plans.Catalog
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
	ctx := context.Background()
	w := &world{Fleet: testfleet.New(t, testfleet.Options{Projects: nProjects, Seed: 7, Now: testNow}),
		owner: map[string]string{}, projects: map[string][]string{}, item: map[string][2]string{}}
	w.store, w.accounts = billingstore.New(w.Conn, w.DB), accountsstore.New(w.Conn, w.DB)
	for _, o := range w.Sim.Orgs() {
		if o.Plan != "free" { // Neon's free plan has no consumption history
			w.orgs = append(w.orgs, o)
		}
	}
	w.collect(t)

	w.fake = stripefake.New(stripefake.Options{})
	w.fake.SetNow(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	fs := httptest.NewServer(w.fake)
	t.Cleanup(fs.Close)
	w.stripeURL = fs.URL
	w.sc = accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: fs.URL})

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
		pp := &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), ProductData: &stripe.PriceProductDataParams{Name: stripe.String(m)},
			Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"), UsageType: stripe.String("metered"), AggregateUsage: stripe.String("sum")}}
		p, err := w.sc.Prices.New(pp)
		if err != nil {
			t.Fatal(err)
		}
		prices[m] = p.ID
		fmt.Fprintf(&yaml, "      %s: {price: %s, unit: %s}\n", m, p.ID, unit)
	}
	var err error
	w.cat, err = plans.Parse("world.yaml", []byte(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Setup(ctx, w.sc, w.cat, true); err != nil {
		t.Fatal(err)
	}

	periodStart := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var csv bytes.Buffer
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	for _, o := range w.orgs {
		ids := append([]string(nil), o.ProjectIDs...)
		sort.Strings(ids)
		for i := 0; i < len(ids); i += projectsPerCustomer {
			cus, err := w.sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("%s-%d", o.ID, i))})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ids[i:min(i+projectsPerCustomer, len(ids))] {
				w.owner[p] = cus.ID
				w.projects[cus.ID] = append(w.projects[cus.ID], p)
				fmt.Fprintf(&csv, "%s,%s,pro,%s\n", p, cus.ID, periodStart.Format(time.RFC3339))
			}
			if !o.Legacy {
				continue
			}
			var items []*stripe.SubscriptionItemsParams
			for _, m := range sortedKeys(legacyMetrics) {
				items = append(items, &stripe.SubscriptionItemsParams{Price: stripe.String(prices[m])})
			}
			sub, err := w.sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID), Items: items,
				BackdateStartDate: stripe.Int64(periodStart.Unix())})
			if err != nil {
				t.Fatal(err)
			}
			for _, si := range sub.Items.Data {
				w.item[si.ID] = [2]string{cus.ID, si.Price.ID}
			}
		}
	}
	rows, err := accounts.ParseCSV("map.csv", &csv, w.cat, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(ctx, w.accounts, rows, testNow, false, nil); err != nil {
		t.Fatal(err)
	}
	w.fake.SetNow(testNow)
	w.fake.ResetRequests()
	return w
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// collect sweeps the 72 complete hours before the clock for every org.
func (w *world) collect(t testing.TB) {
	t.Helper()
	to := w.Clock.Now().Truncate(time.Hour)
	for _, o := range w.orgs {
		ep := collector.EndpointV2
		if o.Legacy {
			ep = collector.EndpointLegacy
		}
		c, err := collector.New(collector.Config{Consumption: w.Client, Store: collectorstore.New(w.Conn, w.DB), OrgID: o.ID, Endpoint: ep,
			Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: w.Clock.Now, FlushRows: 20_000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Sweep(context.Background(), collector.Window{From: to.Add(-72 * time.Hour), To: to}); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) pusher(t testing.TB, m *billing.Metrics, mod func(*billing.Config)) *billing.Pusher {
	t.Helper()
	cfg := billing.Config{Sink: billing.NewStripeSink(w.sc), Store: w.store, Accounts: w.accounts, Catalog: w.cat, DefaultPlan: "free",
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Rate: 1e6, Concurrency: 8, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
		MaxAttempts: 30, Metrics: m, Now: w.Clock.Now,
		SummarySettle: -1} // the fake's summaries are consistent at once; the clock does not move
	if mod != nil {
		mod(&cfg)
	}
	p, err := billing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cell is one (customer, target, hour).
type cell struct {
	customer, target string
	hour             time.Time
}

// truth converts the simulator's ground truth: per customer and target, the hourly sums of
// its projects over [from, to), turned into whole units with the period's running total
// (plans.Rounding.Pushes), counted from from (ClickHouse holds nothing earlier).
func (w *world) truth(from, to time.Time) map[cell]int64 {
	out := map[cell]int64{}
	for _, cus := range sortedKeys(w.projects) {
		for _, plan := range w.cat.Plans {
			for metric, b := range plan.Billing {
				target := b.MeterEventName + b.PriceID
				var hours []uint64
				for h := from; h.Before(to); h = h.Add(time.Hour) {
					var sum uint64
					for _, p := range w.projects[cus] {
						sum += uint64(w.Sim.Value(p, metric, h))
					}
					hours = append(hours, sum)
				}
				for i, u := range b.Rounding.Pushes(hours, b.Divisor) {
					if u != 0 {
						out[cell{cus, target, from.Add(time.Duration(i) * time.Hour)}] += u
					}
				}
			}
		}
	}
	return out
}

// stripeHolds returns what the fake holds, per (customer, target, hour), for both sinks.
func (w *world) stripeHolds() map[cell]int64 {
	out := map[cell]int64{}
	for _, name := range w.fake.MeterEventNames() {
		for cus, hours := range w.fake.MeterWindows(name) {
			for h, v := range hours {
				if v.Value != 0 {
					out[cell{cus, name, h}] = v.Value
				}
			}
		}
	}
	for item, byTS := range w.fake.UsageRecords() {
		owner := w.item[item]
		for ts, q := range byTS {
			if q != 0 {
				out[cell{owner[0], owner[1], ts}] = q
			}
		}
	}
	return out
}

// ledgerHolds returns the values the ledger records as pushed.
func (w *world) ledgerHolds(t testing.TB, from, to time.Time) map[cell]int64 {
	t.Helper()
	rows, err := w.store.Ledger(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[cell]int64{}
	for _, r := range rows {
		if r.Status != billing.LedgerPushed {
			t.Errorf("ledger row %s %s %s is %s rev %d, want pushed", r.CustomerID, r.Target, r.Hour, r.Status, r.Revision)
			continue
		}
		if r.Value != 0 {
			out[cell{r.CustomerID, r.Target, r.Hour}] = r.Value
		}
	}
	return out
}

func diffCells(t testing.TB, what string, got, want map[cell]int64) {
	t.Helper()
	bad := 0
	for k, v := range want {
		if got[k] != v {
			if bad < 10 {
				t.Errorf("%s: %s %s %s = %d, want %d", what, k.customer, k.target, k.hour.Format(time.RFC3339), got[k], v)
			}
			bad++
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if bad < 10 {
				t.Errorf("%s: %s %s %s = %d, want nothing", what, k.customer, k.target, k.hour.Format(time.RFC3339), v)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d cells differ", what, bad)
	}
}

// window returns the hours a push with the world's settings covers.
func window() (time.Time, time.Time) {
	return testNow.Add(-72 * time.Hour).Truncate(time.Hour), testNow.Add(-2 * time.Hour).Truncate(time.Hour)
}

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
