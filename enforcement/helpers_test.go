package enforcement_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// testNow is early in a month, mid-hour: the period so far is inside Neon's hourly window.
var testNow = time.Date(2026, 11, 2, 12, 40, 0, 0, time.UTC)

// now is the instant of the pure-function tests (evaluate, plan, review), late in period.
var (
	now    = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	period = plans.PeriodStart(now)
)

// fixture is the shared test fleet (internal/testfleet) with enforcement's helpers on top.
type fixture struct {
	*testfleet.Fleet
	org sim.Org // the scale org, whose usage the tests collect
}

func newFixture(t *testing.T, projects int) *fixture {
	t.Helper()
	return fleetFixture(t, testfleet.New(t, testfleet.Options{Projects: projects, Seed: 11, Now: testNow}))
}

// fleetFixture puts enforcement's helpers on a fleet.
func fleetFixture(t testing.TB, fl *testfleet.Fleet) *fixture {
	t.Helper()
	return &fixture{Fleet: fl, org: fl.Org(t, "scale")}
}

// store is the fleet database's enforcement store.
func (f *fixture) store() *chstore.Store { return chstore.New(f.Conn, f.DB) }

// config completes cfg with the fleet's stores and clock.
func (f *fixture) config(cfg enforcement.Config) enforcement.Config {
	cfg.Store, cfg.Accounts, cfg.Now = f.store(), accountsstore.New(f.Conn, f.DB), f.Clock.Now
	return cfg
}

// collect sweeps the scale org's hourly usage from the period start to the last complete hour.
func (f *fixture) collect(t *testing.T) {
	t.Helper()
	c, err := collector.New(collector.Config{
		Consumption: f.Client, Store: collectorstore.New(f.Conn, f.DB), OrgID: f.org.ID, Endpoint: collector.EndpointV2,
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := f.Clock.Now()
	from := plans.PeriodStart(now).Add(-24 * time.Hour)
	if _, err := c.Sweep(context.Background(), collector.Window{From: from, To: now.Truncate(time.Hour)}); err != nil {
		t.Fatalf("collect: %v", err)
	}
}

// usage returns each scale project's period-to-date compute_unit_seconds as stored.
func (f *fixture) usage(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	now := f.Clock.Now()
	err := f.store().UsageSince(context.Background(), plans.PeriodStart(now), now.Add(time.Hour), func(u enforcement.PeriodUsage) {
		if u.Metric == neon.MetricComputeUnitSeconds {
			out[u.ProjectID] = u.Sum
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// catalogYAML is the tests' plan catalog; its %d are the compute limits in CU-seconds of free,
// pro, enterprise and bigscale.
const catalogYAML = `version: 1
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
`

// catalog builds a plan catalog whose compute limits are given in CU-seconds.
func catalog(t testing.TB, free, pro, ent, big uint64) *plans.Catalog {
	t.Helper()
	y := fmt.Sprintf(catalogYAML, free, pro, ent, big)
	cat, err := plans.Parse("test-catalog.yaml", []byte(y))
	if err != nil {
		t.Fatalf("catalog: %v\n%s", err, y)
	}
	return cat
}

// assign records project → plan rows through the CSV import, valid from at.
func (f *fixture) assign(t testing.TB, cat *plans.Catalog, at time.Time, planOf map[string]string) {
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
	rows, err := accounts.ParseCSV("accounts.csv", strings.NewReader(b.String()), cat, f.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(context.Background(), accountsstore.New(f.Conn, f.DB), rows, f.Clock.Now(), false, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) reconciler(t testing.TB, cat *plans.Catalog, pol enforcement.Policy, reg prometheus.Registerer) *enforcement.Reconciler {
	t.Helper()
	var m *enforcement.Metrics
	if reg != nil {
		var err error
		if m, err = enforcement.NewMetrics(reg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := enforcement.New(f.config(enforcement.Config{Neon: f.Client, Catalog: cat, DefaultPlan: "enterprise", Policy: pol, Metrics: m}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mutations counts the simulator's mutating requests so far.
func (f *fixture) mutations() int64 {
	var n int64
	for k, v := range f.Sim.Stats().Requests {
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

// seedUsage stores one hour of compute_unit_seconds for every project of every org of the fleet
// (value of its id), early in the period, and each org's hourly watermark at the last complete
// hour: the usage a sweep of every org would leave, without the sweep. It returns the values.
func (f *fixture) seedUsage(t testing.TB, value func(id string) uint64) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	now := f.Clock.Now()
	hour := plans.PeriodStart(now).Add(time.Hour)
	out := map[string]uint64{}
	var facts []collector.Fact
	cs := collectorstore.New(f.Conn, f.DB)
	for _, o := range f.Sim.Orgs() {
		for _, id := range o.ProjectIDs {
			out[id] = value(id)
			facts = append(facts, collector.Fact{OrgID: o.ID, ProjectID: id, Metric: neon.MetricComputeUnitSeconds, Hour: hour,
				Value: out[id], PeriodID: "period-1", PeriodPlan: o.Plan, CollectedAt: now, Version: 1})
		}
		hourly := collector.Feed{OrgID: o.ID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
		if err := cs.SetWatermark(ctx, hourly, now.Truncate(time.Hour), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.InsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	return out
}

// requestsSince returns the simulator's requests by route since before (a Stats().Requests).
func (f *fixture) requestsSince(before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range f.Sim.Stats().Requests {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
