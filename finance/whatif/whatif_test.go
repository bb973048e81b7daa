package whatif_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/finance/whatif"
	whatifstore "github.com/neonmeter/neonmeter/finance/whatif/chstore"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// November 2026, the simulated period. Enforcement runs just before it ends, billing just after
// (within Stripe's grace, so its last hours are pushed).
var (
	period     = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	enforceAt  = time.Date(2026, 11, 30, 23, 50, 0, 0, time.UTC)
	pushAt     = time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)
	collected  = enforceAt.Truncate(time.Hour) // the collector's last complete hour ends here
	collectFor = 72 * time.Hour
)

const projectsPerCustomer = 4

// world is a month of real parts: the simulated fleet collected into ClickHouse, accounts
// imported, one real enforcement cycle (enforce mode, against the simulator) and one real billing
// push to the recording fake Stripe.
type world struct {
	*testfleet.Fleet
	cat       *plans.Catalog
	stripe    *testworld.Stripe
	planOf    map[string]string // project → plan
	ownerOf   map[string]string // project → customer
	compute   map[string]uint64 // project → compute_unit_seconds collected (ground truth)
	transfer  map[string]uint64 // project → public_network_transfer_bytes collected
	free, pro uint64            // the compute limits, CU-seconds
}

func catalogYAML(free, pro uint64) string {
	return fmt.Sprintf(`version: 1
warn_at: [80, 100]
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5}
    limits:
      compute_unit_seconds: {kind: hard, max: %d CU-second}
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4}
    limits:
      compute_unit_seconds: {kind: soft, max: %d CU-second}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
`, free, pro)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{Fleet: testfleet.New(t, testfleet.Options{Projects: 48, Seed: 5, Now: enforceAt}),
		planOf: map[string]string{}, ownerOf: map[string]string{}, compute: map[string]uint64{},
		transfer: map[string]uint64{}}
	var ids []string
	for _, o := range w.Sim.Orgs() {
		if o.Plan == "free" || o.Legacy {
			continue // no v2 consumption history
		}
		testworld.Collect(t, w.Fleet, o, collected.Add(-collectFor), collected)
		ids = append(ids, o.ProjectIDs...)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for h := collected.Add(-collectFor); h.Before(collected); h = h.Add(time.Hour) {
			w.compute[id] += uint64(w.Sim.Value(id, neon.MetricComputeUnitSeconds, h))
			w.transfer[id] += uint64(w.Sim.Value(id, neon.MetricPublicNetworkTransferBytes, h))
		}
	}
	w.chooseLimits(ids)
	w.cat = testworld.Catalog(t, catalogYAML(w.free, w.pro))
	w.stripe = testworld.NewStripe(t, period)
	w.stripe.Setup(t, w.cat)
	w.assign(t, ids)
	w.enforce(t)
	w.push(t)
	return w
}

// chooseLimits puts each plan's limit inside its projects' usage, so that some are over, some
// warned and some fine, and the free limit even, so that halving it is exact.
func (w *world) chooseLimits(ids []string) {
	var free, pro []uint64
	for i, id := range ids {
		w.planOf[id] = []string{"free", "pro"}[(i/projectsPerCustomer)%2]
		if w.planOf[id] == "free" {
			free = append(free, w.compute[id])
		} else {
			pro = append(pro, w.compute[id])
		}
	}
	pick := func(vs []uint64, q int) uint64 {
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
		return max(vs[len(vs)*q/100]&^1, 2)
	}
	w.free, w.pro = pick(free, 70), pick(pro, 80)
}

// assign gives every projectsPerCustomer projects a Stripe customer, on alternating plans.
func (w *world) assign(t *testing.T, ids []string) {
	t.Helper()
	var m testworld.Mapping
	var cus string
	for i, id := range ids {
		if i%projectsPerCustomer == 0 {
			cus = w.stripe.Customer(t, fmt.Sprintf("customer-%d", i))
		}
		w.ownerOf[id] = cus
		m.Add(id, cus, w.planOf[id], period)
	}
	m.Import(t, w.Conn, w.DB, w.cat, w.Clock.Now())
}

// enforce runs one real cycle in enforce mode, without grace.
func (w *world) enforce(t *testing.T) {
	t.Helper()
	pol := enforcement.DefaultPolicy()
	pol.Mode, pol.Grace, pol.MaxPercent = enforcement.ModeEnforce, 0, 100
	r, err := enforcement.New(enforcement.Config{Neon: w.Client, Store: enforcementstore.New(w.Conn, w.DB),
		Accounts: accountsstore.New(w.Conn, w.DB), Catalog: w.cat, DefaultPlan: "free", Policy: pol, Now: w.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cycle(context.Background(), enforcement.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
}

// push runs one real billing cycle after the period's end, within its grace.
func (w *world) push(t *testing.T) {
	t.Helper()
	w.Clock.Set(pushAt)
	w.stripe.Fake.SetNow(pushAt)
	cfg := w.stripe.PusherConfig(w.Conn, w.DB, w.cat, w.Clock.Now)
	cfg.Lookback = 96 * time.Hour
	res, err := testworld.Pusher(t, cfg).Push(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending != 0 || res.Failed != 0 {
		t.Fatalf("push left %d pending, %d failed", res.Pending, res.Failed)
	}
}

func (w *world) config(draft *plans.Catalog) whatif.Config { return config(w.Conn, w.DB, w.cat, draft) }

// config simulates draft against current over the stores of database db.
func config(conn driver.Conn, db string, current, draft *plans.Catalog) whatif.Config {
	return whatif.Config{Billing: billingstore.New(conn, db), Enforcement: enforcementstore.New(conn, db),
		Outcomes: whatifstore.New(conn, db), Accounts: accountsstore.New(conn, db), Current: current, Draft: draft,
		DefaultPlan: "free", Policy: enforcement.DefaultPolicy()}
}

// stripeUnits is what the fake Stripe holds per customer for a meter, summed over the period.
func (w *world) stripeUnits(meter string) map[string]int64 {
	out := map[string]int64{}
	for c, v := range w.stripe.MeterHolds() {
		if c.Target == meter && !c.Hour.Before(period) && c.Hour.Before(plans.PeriodEnd(period)) {
			out[c.Customer] += v
		}
	}
	return out
}

// rowCounts counts the rows of every table of the database.
func (w *world) rowCounts(t *testing.T) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	rows, err := w.Conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine NOT LIKE '%View'", w.DB)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string]uint64{}
	for _, n := range names {
		var c uint64
		if err := w.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", w.DB, n)).Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// line finds a report line.
func line(rep *whatif.Report, plan, customer, measure string) whatif.Line {
	for _, l := range rep.Lines {
		if l.Plan == plan && l.Customer == customer && l.Measure == measure {
			return l
		}
	}
	return whatif.Line{Plan: plan, Customer: customer, Measure: measure}
}
