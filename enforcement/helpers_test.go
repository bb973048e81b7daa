package enforcement_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testNow is early in a month, mid-hour: the period so far is inside Neon's hourly window.
var testNow = time.Date(2026, 11, 2, 12, 40, 0, 0, time.UTC)

// fixture is a simulated fleet on real HTTP, a Neon client and a migrated ClickHouse database.
type fixture struct {
	clock  *clock
	sim    *sim.Sim
	url    string
	client *neon.Client
	conn   driver.Conn
	db     string
	org    sim.Org
}

func newFixture(t *testing.T, projects int) *fixture {
	t.Helper()
	clk := &clock{t: testNow}
	s, err := sim.New(sim.Config{Projects: projects, Seed: 11, Now: clk.Now, APIKey: "test-key"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	url := srv.URL + "/api/v2"
	client, err := neon.NewClient(neon.Config{
		BaseURL: url, APIKey: "test-key", ConsumptionRatePerMin: 1e6, ConsumptionBurst: 100,
		GeneralRatePerMin: 1e6, GeneralBurst: 100, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxRetries: 30, OperationPollInterval: 2 * time.Millisecond, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, db := chtest.New(t)
	f := &fixture{clock: clk, sim: s, url: url, client: client, conn: conn, db: db}
	for _, o := range s.Orgs() {
		if o.Plan == "scale" {
			f.org = o
		}
	}
	return f
}

// collect sweeps the scale org's hourly usage from the period start to the last complete hour.
func (f *fixture) collect(t *testing.T) {
	t.Helper()
	c, err := collector.New(collector.Config{
		Source: f.client, Store: collector.NewClickHouseStore(f.conn, f.db), OrgID: f.org.ID, Endpoint: collector.EndpointV2,
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	from := enforcement.PeriodStart(now).Add(-24 * time.Hour)
	if _, err := c.Sweep(context.Background(), collector.Window{From: from, To: now.Truncate(time.Hour)}); err != nil {
		t.Fatalf("collect: %v", err)
	}
}

// usage returns each scale project's period-to-date compute_unit_seconds as stored.
func (f *fixture) usage(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	now := f.clock.Now()
	err := schema.UsageSince(context.Background(), f.conn, f.db, enforcement.PeriodStart(now), now.Add(time.Hour), func(u schema.PeriodUsage) {
		if u.Metric == neon.MetricComputeUnitSeconds {
			out[u.ProjectID] = u.Sum
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// catalog builds a plan catalog whose compute limits are given in CU-seconds.
func catalog(t testing.TB, free, pro, ent, big uint64) *plans.Catalog {
	t.Helper()
	y := fmt.Sprintf(`version: 1
warn_at: [80, 100]
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5, suspend_timeout: 5m}
    limits:
      compute_unit_seconds: {kind: hard, max: %d CU-second}
      active_time_seconds:  {kind: hard, max: 1000h}
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4}
    limits:
      compute_unit_seconds: {kind: soft, max: %d CU-second}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
  - name: enterprise
    limits:
      compute_unit_seconds: {kind: none, max: %d CU-second}
  - name: bigscale
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 8}
    limits:
      compute_unit_seconds: {kind: hard, max: %d CU-second}
`, free, pro, ent, big)
	cat, err := plans.Parse("test-catalog.yaml", []byte(y))
	if err != nil {
		t.Fatalf("catalog: %v\n%s", err, y)
	}
	return cat
}

// assign records project → plan rows through the CSV import, valid from at.
func (f *fixture) assign(t *testing.T, cat *plans.Catalog, at time.Time, planOf map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("project_id,customer_id,plan,valid_from\n")
	ids := make([]string, 0, len(planOf))
	for id := range planOf {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "%s,cus_%s,%s,%s\n", id, strings.ReplaceAll(id, "-", "_"), planOf[id], at.Format(time.RFC3339))
	}
	rows, err := accounts.ParseCSV("accounts.csv", strings.NewReader(b.String()), cat, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(context.Background(), f.conn, f.db, rows, f.clock.Now(), false, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) reconciler(t *testing.T, cat *plans.Catalog, pol enforcement.Policy, reg prometheus.Registerer) *enforcement.Reconciler {
	t.Helper()
	var m *enforcement.Metrics
	if reg != nil {
		var err error
		if m, err = enforcement.NewMetrics(reg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := enforcement.New(enforcement.Config{Neon: f.client, Conn: f.conn, Database: f.db, Catalog: cat, DefaultPlan: "enterprise",
		Policy: pol, Now: f.clock.Now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mutations counts the simulator's mutating requests so far.
func (f *fixture) mutations() int64 {
	var n int64
	for k, v := range f.sim.Stats().Requests {
		if strings.HasPrefix(k, "PATCH ") || strings.HasPrefix(k, "POST ") {
			n += v
		}
	}
	return n
}

func testPolicy() enforcement.Policy {
	p := enforcement.DefaultPolicy()
	p.Mode = enforcement.ModeEnforce
	p.Grace = 0
	p.MaxPercent = 100
	return p
}

func actionList(rep *enforcement.Report) []string {
	var out []string
	for _, r := range rep.Rows {
		for _, a := range r.Actions {
			out = append(out, a.String())
		}
	}
	return out
}
