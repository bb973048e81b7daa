package enforcement_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// BenchmarkPlan300k times what a cycle does before reading Neon, for 300,000 projects with usage
// this period: the one fleet-wide usage query, accounts, watermarks and states (Load), then
// Evaluate of every project. Goal: under 5 s.
//
//	go test -run '^$' -bench BenchmarkPlan300k -benchtime 3x ./enforcement/
func BenchmarkPlan300k(b *testing.B) {
	const n = 300_000
	conn, db := chtest.New(b)
	ctx := context.Background()
	hour := plans.PeriodStart(testNow).Add(time.Hour)
	facts := make([]collector.Fact, 0, 2*n)
	for i := range n {
		id := fmt.Sprintf("bench-project-%07d", i)
		for _, m := range []string{neon.MetricComputeUnitSeconds, neon.MetricPublicNetworkTransferBytes} {
			facts = append(facts, collector.Fact{OrgID: "org-bench", ProjectID: id, Metric: m, Hour: hour, Value: uint64(i % 5000),
				PeriodID: "p", PeriodPlan: "scale", CollectedAt: testNow, Version: 1})
		}
	}
	cs := collectorstore.New(conn, db)
	if err := cs.InsertFacts(ctx, facts); err != nil {
		b.Fatal(err)
	}
	hourly := collector.Feed{OrgID: "org-bench", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
	if err := cs.SetWatermark(ctx, hourly, testNow.Truncate(time.Hour), testNow); err != nil {
		b.Fatal(err)
	}
	cat := catalog(b, 4000, 4000, 4000, 4000)
	r, err := enforcement.New(enforcement.Config{Neon: nopNeon{}, Store: chstore.New(conn, db), Accounts: accountsstore.New(conn, db), Catalog: cat,
		DefaultPlan: "free", Policy: enforcement.DefaultPolicy(), Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ev, err := r.Load(ctx, testNow)
		if err != nil {
			b.Fatal(err)
		}
		over := 0
		for _, d := range ev.Projects {
			if v := enforcement.Evaluate(*d, enforcement.DefaultPolicy(), testNow); v.Level == enforcement.LevelOver {
				over++
			}
		}
		if len(ev.Projects) != n || over == 0 {
			b.Fatalf("%d projects, %d over", len(ev.Projects), over)
		}
	}
}

// nopNeon is never called: planning does not read Neon.
type nopNeon struct{ enforcement.Neon }

// BenchmarkCycleFleet runs enforcement on a simulated fleet over real HTTP and ClickHouse 18.16,
// at 30,000, 100,000 and 300,000 projects (ActiveShare 0.1: about a tenth run a compute in an
// hour), every project with usage this period (skewed: about 0.1 % over the free plan's hard
// limit, 3 % at 80 % or more), every project on the free plan (hard limit, managed autoscaling
// and suspend timeout: every one needs tightening), the collector's progress one hour old, the
// default policy. Each iteration starts from nothing enforcement remembers and a fresh simulator,
// then runs, timed one by one:
//   - first: the first cycle in the default mode (dry-run: plans everything, records states,
//     audit and the at-risk set);
//   - dry: an explicit dry run (enforce --dry-run) after it;
//   - enforce: the first cycle in enforce mode.
//
// It reports each cycle's seconds and Neon calls (list pages, GET project, GET endpoints,
// mutations) per fleet size; the simulator's counts by route are logged (-v).
//
//	go test -run '^$' -bench BenchmarkCycleFleet -benchtime 1x -timeout 60m -v ./enforcement/
func BenchmarkCycleFleet(b *testing.B) {
	for _, n := range []int{30_000, 100_000, 300_000} {
		b.Run(fmt.Sprintf("projects=%d", n), func(b *testing.B) { benchCycleFleet(b, n) })
	}
}

func benchCycleFleet(b *testing.B, n int) {
	ctx := context.Background()
	simCfg := func(c *sim.Config) { c.ActiveShare = 0.1 }
	f := fleetFixture(b, testfleet.New(b, testfleet.Options{Projects: n, Seed: 11, Now: testNow, Sim: simCfg}))
	f.seedUsage(b, func(id string) uint64 {
		x := float64(crc32.ChecksumIEEE([]byte(id))%1_000_000) / 1e6
		return uint64(math.Pow(x, 8) * 1e6)
	})
	var progress []collector.ProjectProgress
	for _, o := range f.Sim.Orgs() {
		for _, id := range o.ProjectIDs {
			progress = append(progress, collector.ProjectProgress{OrgID: o.ID, ProjectID: id, CompleteThrough: testNow.Truncate(time.Hour), FinalThrough: testNow.Truncate(time.Hour), RereadThrough: testNow.Truncate(time.Hour),
				Tier: collector.TierRolling, UpdatedAt: testNow, RunID: "collect-bench"})
		}
	}
	if err := collectorstore.New(f.Conn, f.DB).WriteProgress(ctx, progress); err != nil {
		b.Fatal(err)
	}
	cat := catalog(b, 990_000, 990_000, 990_000, 990_000)
	var reps [3]*enforcement.Report
	var calls [3]map[string]int64
	var secs [3]float64
	for b.Loop() {
		b.StopTimer()
		fl := f.resetForBench(b, n, simCfg)
		b.StartTimer()
		for i, mode := range []enforcement.Mode{enforcement.ModeDryRun, enforcement.ModeDryRun, enforcement.ModeEnforce} {
			pol := enforcement.DefaultPolicy()
			pol.Mode = mode
			r, err := enforcement.New(enforcement.Config{Neon: fl.Client, Store: f.store(), Accounts: accountsstore.New(f.Conn, f.DB),
				Catalog: cat, DefaultPlan: "free", Policy: pol, Now: fl.Clock.Now})
			if err != nil {
				b.Fatal(err)
			}
			before, start := fl.Sim.Stats().Requests, time.Now()
			if reps[i], err = r.Cycle(ctx, enforcement.CycleOptions{DryRun: i == 1}); err != nil {
				b.Fatal(err)
			}
			secs[i] = time.Since(start).Seconds()
			calls[i] = (&fixture{Fleet: fl}).requestsSince(before)
		}
		if w := fl.Sim.Stats().Wakes; w != 0 {
			b.Fatalf("%d idle computes woken", w)
		}
	}
	for i, name := range []string{"first", "dry", "enforce"} {
		rep := reps[i]
		if rep.Fleet != n || rep.ListCalls < n/neon.MaxProjectsLimit || rep.EndpointCalls > enforcement.DefaultMaxReads+enforcement.DefaultDriftReads {
			b.Fatalf("%s: fleet %d, %d list calls, %d compute reads", name, rep.Fleet, rep.ListCalls, rep.EndpointCalls)
		}
		b.ReportMetric(secs[i], name+"-s")
		b.ReportMetric(float64(rep.ListCalls), name+"-list")
		b.ReportMetric(float64(rep.GetCalls), name+"-get")
		b.ReportMetric(float64(rep.EndpointCalls), name+"-computes")
		b.ReportMetric(float64(rep.Mutations), name+"-mutations")
		b.Logf("%d projects, %s cycle: %.1f s, simulator %v; %d rows, %d at risk, %d planned or sent", n, name, secs[i], calls[i],
			len(rep.Rows), rep.AtRisk, len(actionList(rep)))
	}
}

// resetForBench forgets what enforcement remembers and starts a fresh simulator with the fleet's
// seed (Neon as before any cycle); the returned fleet shares the fixture's database.
func (f *fixture) resetForBench(b *testing.B, n int, simCfg func(*sim.Config)) *testfleet.Fleet {
	b.Helper()
	for _, table := range []string{"enforcement_state", "enforcement_audit", "enforcement_at_risk", "enforcement_breaker"} {
		if err := f.Conn.Exec(context.Background(), "TRUNCATE TABLE "+f.DB+"."+table); err != nil {
			b.Fatal(err)
		}
	}
	clk := testclock.New(testNow)
	cfg := sim.Config{Projects: n, Seed: 11, Now: clk.Now, APIKey: testfleet.APIKey}
	simCfg(&cfg)
	s, err := sim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	fl := &testfleet.Fleet{Clock: clk, Sim: s, URL: srv.URL + "/api/v2", Conn: f.Conn, DB: f.DB}
	fl.Client = fl.NewClient(b, nil)
	return fl
}
