package chstore_test

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/finance"
	financestore "github.com/neonmeter/neonmeter/finance/chstore"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// The world's cost table, for its catalog testworld.MeterCatalog. Neon prices three metrics;
// pro prices two of its three meters, so neon_storage_root is billed but earns 0.
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
	st              *testworld.Stripe
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
	w := &world{Fleet: testfleet.New(t, testfleet.Options{Projects: 60}), projects: map[string][]string{}}
	w.to = w.Clock.Now().Truncate(time.Hour)
	w.from = w.to.Add(-72 * time.Hour)
	var ids []string
	for _, o := range w.Sim.Orgs() {
		if o.Plan == "free" || o.Legacy || len(o.ProjectIDs) < 10 {
			continue
		}
		testworld.Collect(t, w.Fleet, o, w.from, w.to)
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
	w.st = testworld.NewStripe(t, w.Clock.Now())
	w.cat = testworld.Catalog(t, testworld.MeterCatalog)
	var err error
	if w.costs, err = finance.ParseCosts("costs.yaml", []byte(worldCosts), w.cat); err != nil {
		t.Fatal(err)
	}
	w.st.Setup(t, w.cat)
	w.store = financestore.New(w.Conn, w.DB)
	if err := w.store.LoadCosts(context.Background(), w.costs, "free", w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// assign creates the two customers in the fake and imports their projects from the period's
// start.
func (w *world) assign(t *testing.T, pro, free []string) {
	var m testworld.Mapping
	for i, set := range []struct {
		plan string
		ids  []string
		cus  *string
	}{{"pro", pro, &w.cusPro}, {"free", free, &w.cusFree}} {
		*set.cus = w.st.Customer(t, fmt.Sprintf("customer-%d", i))
		w.projects[*set.cus] = set.ids
		for _, p := range set.ids {
			m.Add(p, *set.cus, set.plan, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		}
	}
	m.Import(t, w.Conn, w.DB, w.cat, w.Clock.Now())
}

// pushAndReconcile pushes through the real pusher, then makes Stripe hold 3 more units of one
// hour than billing sent (as an operator's stray event would) and reconciles, so what Stripe
// holds differs from the ledger by a known drift.
func (w *world) pushAndReconcile(t *testing.T) {
	ctx := context.Background()
	w.pusher = testworld.Pusher(t, w.st.PusherConfig(w.Conn, w.DB, w.cat, w.Clock.Now))
	if _, err := w.pusher.Push(ctx, false); err != nil {
		t.Fatal(err)
	}
	hour := w.from.Add(5 * time.Hour)
	held := w.st.Fake.MeterWindows("neon_compute")[w.cusPro][hour].Value
	if _, err := w.st.Client.BillingMeterEvents.New(&stripe.BillingMeterEventParams{EventName: stripe.String("neon_compute"), Identifier: stripe.String("stray-1"),
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
	for c, v := range w.st.MeterHolds() {
		if c.Customer == customer {
			out[c.Target] += v
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
