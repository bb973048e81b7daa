package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

const projectsPerCustomer = 20

// billingRig is billing on the cluster: org's projects mapped to customers on plan pro
// (accounts CSV import), the recording fake Stripe with the catalog's meters, and a pusher as
// cmd wires it (billing's and accounts' stores on the cluster connection).
type billingRig struct {
	stripe *testworld.Stripe
	cat    *plans.Catalog
	owned  map[string][]string // customer → its projects
	pusher *billing.Pusher
}

func newBillingRig(t *testing.T, f *testfleet.Fleet, org sim.Org) *billingRig {
	t.Helper()
	cat := testworld.Catalog(t, testworld.MeterCatalog)
	now := f.Clock.Now()
	r := &billingRig{stripe: testworld.NewStripe(t, now), cat: cat, owned: map[string][]string{}}
	r.stripe.Setup(t, cat)
	projects := slices.Sorted(slices.Values(org.ProjectIDs))
	var mapping testworld.Mapping
	periodStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < len(projects); i += projectsPerCustomer {
		cus := r.stripe.Customer(t, fmt.Sprintf("cluster-%d", i))
		for _, p := range projects[i:min(i+projectsPerCustomer, len(projects))] {
			mapping.Add(p, cus, "pro", periodStart)
			r.owned[cus] = append(r.owned[cus], p)
		}
	}
	mapping.Import(t, f.Conn, f.DB, cat, now)
	r.pusher = testworld.Pusher(t, r.stripe.PusherConfig(f.Conn, f.DB, cat, f.Clock.Now))
	r.stripe.Fake.ResetRequests()
	return r
}

// push pushes billing's window once.
func (r *billingRig) push() (billing.Result, error) {
	return r.pusher.Push(context.Background(), false)
}

// assertExact checks the fake Stripe and every replica's ledger, read directly, against the
// ground truth converted to billing units.
func (r *billingRig) assertExact(t *testing.T, c chtest.Cluster, f *testfleet.Fleet) {
	t.Helper()
	from, to := testworld.PushWindow(f.Clock.Now())
	pro, _ := r.cat.Plan("pro")
	truth := testworld.Truth(f.Sim, pro, r.owned, from, to)
	if len(truth) == 0 {
		t.Fatal("the billing ground truth is empty: the comparison proves nothing")
	}
	testworld.DiffCells(t, "fake Stripe vs ground truth", r.stripe.MeterHolds(), truth)
	t.Logf("fake Stripe holds the %d non-zero cells of the ground truth", len(truth))
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, f.DB)
		ledger := testworld.LedgerHolds(t, billingstore.New(node, f.DB), from, to)
		testworld.DiffCells(t, fmt.Sprintf("replica %d: ledger vs ground truth", i+1), ledger, truth)
	}
}
