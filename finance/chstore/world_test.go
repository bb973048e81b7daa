package chstore_test

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"net/http/httptest"
	"sort"
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
	"github.com/neonmeter/neonmeter/finance"
	financestore "github.com/neonmeter/neonmeter/finance/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// The world's catalog: pro bills three v2 metrics through meters; free bills nothing.
const worldCatalog = `version: 1
plans:
  - name: free
  - name: pro
    billing:
      compute_unit_seconds:          {meter: neon_compute, unit: CU-hour}
      root_branch_bytes_month:       {meter: neon_storage_root, unit: MB-month}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
`

// The world's cost table. Neon prices three metrics; pro prices two of its three meters, so
// neon_storage_root is billed but earns 0.
const worldCosts = `version: 1
currency: usd
neon_plan: scale
neon:
  compute_unit_seconds:          {unit: CU-hour,  price: 0.16}
  root_branch_bytes_month:       {unit: GB-month, price: 0.35}
  public_network_transfer_bytes: {unit: GB,       price: 0.09}
plans:
  pro:
    neon_compute:  0.26
    neon_transfer: 0.15
`

// world is the chain on real parts: the simulated fleet collected into ClickHouse, accounts
// imported from CSV, billing pushed to the recording fake Stripe, a reconcile, the cost table
// loaded. cusPro owns five projects on pro, cusFree five on free.
type world struct {
	*testfleet.Fleet
	fake            *stripefake.Server
	sc              *client.API
	cat             *plans.Catalog
	costs           *finance.Costs
	store           *financestore.Store
	pusher          *billing.Pusher
	cusPro, cusFree string
	projects        map[string][]string
	from, to        time.Time // the collected hours
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{Fleet: testfleet.New(t, testfleet.Options{Projects: 60}), projects: map[string][]string{}}
	w.to = w.Clock.Now().Truncate(time.Hour)
	w.from = w.to.Add(-72 * time.Hour)
	var ids []string
	for _, o := range w.Sim.Orgs() {
		if o.Plan == "free" || o.Legacy || len(o.ProjectIDs) < 10 {
			continue
		}
		c, err := collector.New(collector.Config{Consumption: w.Client, Store: collectorstore.New(w.Conn, w.DB), OrgID: o.ID, Endpoint: collector.EndpointV2,
			Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: w.Clock.Now, FlushRows: 20_000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Sweep(ctx, collector.Window{From: w.from, To: w.to}); err != nil {
			t.Fatal(err)
		}
		ids = append([]string(nil), o.ProjectIDs...)
		break
	}
	if len(ids) < 10 {
		t.Fatal("the fleet has no v2 org with 10 projects")
	}
	sort.Strings(ids)
	w.stripe(t)
	w.assign(t, ids[:5], ids[5:10])
	w.pushAndReconcile(t)
	return w
}

// stripe starts the fake, parses the catalog and the cost table and creates the meters.
func (w *world) stripe(t *testing.T) {
	w.fake = stripefake.New(stripefake.Options{})
	w.fake.SetNow(w.Clock.Now())
	fs := httptest.NewServer(w.fake)
	t.Cleanup(fs.Close)
	w.sc = accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: fs.URL})
	var err error
	if w.cat, err = plans.Parse("world.yaml", []byte(worldCatalog)); err != nil {
		t.Fatal(err)
	}
	if w.costs, err = finance.ParseCosts("costs.yaml", []byte(worldCosts), w.cat); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Setup(context.Background(), w.sc, w.cat, true); err != nil {
		t.Fatal(err)
	}
	w.store = financestore.New(w.Conn, w.DB)
	if err := w.store.LoadCosts(context.Background(), w.costs, "free", w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// assign creates the two customers in the fake and imports their projects from the period's
// start.
func (w *world) assign(t *testing.T, pro, free []string) {
	var csv bytes.Buffer
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	for i, set := range []struct {
		plan string
		ids  []string
		cus  *string
	}{{"pro", pro, &w.cusPro}, {"free", free, &w.cusFree}} {
		c, err := w.sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("customer-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		*set.cus = c.ID
		w.projects[c.ID] = set.ids
		for _, p := range set.ids {
			fmt.Fprintf(&csv, "%s,%s,%s,2026-11-01T00:00:00Z\n", p, c.ID, set.plan)
		}
	}
	rows, err := accounts.ParseCSV("map.csv", &csv, w.cat, w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(context.Background(), accountsstore.New(w.Conn, w.DB), rows, w.Clock.Now(), false, nil); err != nil {
		t.Fatal(err)
	}
}

// pushAndReconcile pushes through the real pusher, then makes Stripe hold 3 more units of one
// hour than billing sent (as an operator's stray event would) and reconciles, so what Stripe
// holds differs from the ledger by a known drift.
func (w *world) pushAndReconcile(t *testing.T) {
	ctx := context.Background()
	var err error
	w.pusher, err = billing.New(billing.Config{Sink: billing.NewStripeSink(w.sc), Store: billingstore.New(w.Conn, w.DB),
		Accounts: accountsstore.New(w.Conn, w.DB), Catalog: w.cat, DefaultPlan: "free", Lookback: 72 * time.Hour, Provisional: 2 * time.Hour,
		Rate: 1e6, Concurrency: 8, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, MaxAttempts: 30, Now: w.Clock.Now, SummarySettle: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pusher.Push(ctx, false); err != nil {
		t.Fatal(err)
	}
	hour := w.from.Add(5 * time.Hour)
	held := w.fake.MeterWindows("neon_compute")[w.cusPro][hour].Value
	if _, err := w.sc.BillingMeterEvents.New(&stripe.BillingMeterEventParams{EventName: stripe.String("neon_compute"), Identifier: stripe.String("stray-1"),
		Payload: map[string]string{"stripe_customer_id": w.cusPro, "value": fmt.Sprint(held + 3)}, Timestamp: stripe.Int64(hour.Unix())}); err != nil {
		t.Fatal(err)
	}
	res, err := w.pusher.Reconcile(ctx, w.from, w.to.Add(-2*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drift) != 1 {
		t.Fatalf("reconcile found %d drifting buckets, want the one stray event", len(res.Drift))
	}
}

// fakeHolds sums what the fake Stripe holds for a customer, per meter event name.
func (w *world) fakeHolds(customer string) map[string]int64 {
	out := map[string]int64{}
	for _, name := range w.fake.MeterEventNames() {
		for _, win := range w.fake.MeterWindows(name)[customer] {
			out[name] += win.Value
		}
	}
	return out
}

// handRaw sums the simulator's ground truth of a customer's projects over the collected hours.
func (w *world) handRaw(customer, metric string) uint64 {
	var sum uint64
	for h := w.from; h.Before(w.to); h = h.Add(time.Hour) {
		for _, p := range w.projects[customer] {
			sum += uint64(w.Sim.Value(p, metric, h))
		}
	}
	return sum
}

// handCost is floor(raw × price ÷ divisor) in big integers: price in micro-units per unit.
func handCost(raw, micros, divisor uint64) int64 {
	v := new(big.Int).Mul(new(big.Int).SetUint64(raw), new(big.Int).SetUint64(micros))
	return v.Quo(v, new(big.Int).SetUint64(divisor)).Int64()
}

var v2Metrics = neon.V2Metrics()
