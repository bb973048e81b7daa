package whatif_test

import (
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
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/finance/whatif"
	whatifstore "github.com/neonmeter/neonmeter/finance/whatif/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testfleet"
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
	fake      *stripefake.Server
	stripe    *client.API
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

func parse(t testing.TB, name, y string) *plans.Catalog {
	t.Helper()
	cat, err := plans.Parse(name, []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cat
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
		w.collect(t, o.ID)
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
	w.cat = parse(t, "current.yaml", catalogYAML(w.free, w.pro))
	w.startStripe(t)
	w.assign(t, ids)
	w.enforce(t)
	w.push(t)
	return w
}

func (w *world) collect(t *testing.T, org string) {
	t.Helper()
	c, err := collector.New(collector.Config{Consumption: w.Client, Store: collectorstore.New(w.Conn, w.DB), OrgID: org,
		Endpoint: collector.EndpointV2, Lookback: collectFor, Provisional: 2 * time.Hour, Now: w.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sweep(context.Background(), collector.Window{From: collected.Add(-collectFor), To: collected}); err != nil {
		t.Fatal(err)
	}
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

func (w *world) startStripe(t *testing.T) {
	t.Helper()
	w.fake = stripefake.New(stripefake.Options{})
	w.fake.SetNow(period)
	srv := httptest.NewServer(w.fake)
	t.Cleanup(srv.Close)
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: srv.URL})
	if _, err := billing.Setup(context.Background(), sc, w.cat, true); err != nil {
		t.Fatal(err)
	}
	w.stripe = sc
}

// assign gives every projectsPerCustomer projects a Stripe customer, on alternating plans.
func (w *world) assign(t *testing.T, ids []string) {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	var cus string
	for i, id := range ids {
		if i%projectsPerCustomer == 0 {
			c, err := w.stripe.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("customer-%d", i))})
			if err != nil {
				t.Fatal(err)
			}
			cus = c.ID
		}
		w.ownerOf[id] = cus
		fmt.Fprintf(&csv, "%s,%s,%s,%s\n", id, cus, w.planOf[id], period.Format(time.RFC3339))
	}
	rows, err := accounts.ParseCSV("map.csv", strings.NewReader(csv.String()), w.cat, w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(context.Background(), accountsstore.New(w.Conn, w.DB), rows, w.Clock.Now(), false, nil); err != nil {
		t.Fatal(err)
	}
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
	w.fake.SetNow(pushAt)
	p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(w.stripe), Store: billingstore.New(w.Conn, w.DB),
		Accounts: accountsstore.New(w.Conn, w.DB), Catalog: w.cat, DefaultPlan: "free", Lookback: 96 * time.Hour,
		Provisional: 2 * time.Hour, Rate: 1e6, Concurrency: 8, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
		MaxAttempts: 30, Now: w.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Push(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending != 0 || res.Failed != 0 {
		t.Fatalf("push left %d pending, %d failed", res.Pending, res.Failed)
	}
}

func (w *world) config(draft *plans.Catalog) whatif.Config {
	return whatif.Config{Billing: billingstore.New(w.Conn, w.DB), Enforcement: enforcementstore.New(w.Conn, w.DB),
		Outcomes: whatifstore.New(w.Conn, w.DB), Accounts: accountsstore.New(w.Conn, w.DB), Current: w.cat, Draft: draft,
		DefaultPlan: "free", Policy: enforcement.DefaultPolicy()}
}

// stripeUnits is what the fake Stripe holds per customer for a meter, summed over the period.
func (w *world) stripeUnits(meter string) map[string]int64 {
	out := map[string]int64{}
	for cus, hours := range w.fake.MeterWindows(meter) {
		for h, v := range hours {
			if !h.Before(period) && h.Before(plans.PeriodEnd(period)) {
				out[cus] += v.Value
			}
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
