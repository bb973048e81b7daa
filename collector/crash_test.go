package collector_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// sweepChild is what a child process is started with (see TestMain): it sweeps Org, or, given
// Orgs, runs one budgeted cycle of them.
type sweepChild struct {
	URL, DB string    // the simulator's API, the database
	Now     time.Time // the child's clock, which stands still
	Org     string
	Orgs    []collector.FleetOrg
}

func TestMain(m *testing.M) { crashtest.Main(m, childRun) }

// childRun runs one sweep or cycle in this process, to be killed by the parent test. Both flush
// often, at a random size, so kills land between a page's facts and what records them (a
// cycle's progress, a sweep's watermark).
func childRun() error {
	var c sweepChild
	if err := crashtest.Settings(&c); err != nil {
		return err
	}
	client, err := neon.NewClient(testfleet.ClientConfig(c.URL))
	if err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := chtest.Open(ctx)
	if err != nil {
		return err
	}
	store, now := collectorstore.New(conn, c.DB), func() time.Time { return c.Now }
	if len(c.Orgs) > 0 {
		f, err := collector.NewFleet(collector.FleetConfig{Orgs: c.Orgs, Neon: client, Store: store, CallsPerCycle: 1000, BatchSize: 5,
			Now: now, FlushRows: 200 + rand.IntN(2000)})
		if err != nil {
			return err
		}
		_, err = f.Cycle(ctx)
		return err
	}
	col, err := collector.New(collector.Config{Consumption: client, Store: store, OrgID: c.Org, Lookback: 72 * time.Hour, Now: now,
		FlushRows: 1000 + rand.IntN(5000)})
	if err != nil {
		return err
	}
	_, err = col.Sweep(ctx, collector.Window{})
	return err
}

// TestCycle_KilledAtRandomPointsThenExact kills a process running a budgeted cycle with
// SIGKILL at random points, often between a call's facts and its progress: after every kill
// each project's progress is backed by exact facts (nothing is marked complete that is not
// stored), and a cycle run to its end leaves everything exact.
func TestCycle_KilledAtRandomPointsThenExact(t *testing.T) {
	f := newFleet(t, 600)
	orgs := []sim.Org{f.Org(t, "launch"), f.Org(t, "legacy")}
	settings := sweepChild{URL: f.URL, DB: f.DB, Now: f.Clock.Now(), Orgs: fleetOrgs(orgs...)}
	f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 20 * time.Millisecond, Seed: 3})
	rng := rand.New(rand.NewPCG(5, 6))
	killed := 0
	var midway []int // projects with progress after each kill
	for attempt := 0; killed < 10; attempt++ {
		if attempt == 30 {
			t.Fatalf("only %d of 30 child cycles were killed before finishing", killed)
		}
		if !crashtest.KillWithin(t, "cycle", time.Duration(100+rng.IntN(1200))*time.Millisecond, settings) {
			continue
		}
		killed++
		f.assertProgressBacked(t, orgs)
		midway = append(midway, len(f.progress(t, orgs[0].ID))+len(f.progress(t, orgs[1].ID)))
	}
	t.Logf("projects with progress after each kill: %v (of %d)", midway, len(orgs[0].ProjectIDs)+len(orgs[1].ProjectIDs))
	if !slices.ContainsFunc(midway, func(n int) bool { return n > 0 && n < len(orgs[0].ProjectIDs)+len(orgs[1].ProjectIDs) }) {
		t.Fatalf("no kill landed between a cycle's first and last progress write: the test proves nothing")
	}
	f.Sim.SetFaults(sim.Faults{})
	cycle(t, f.cycler(t, 1000, nil, orgs...))
	if f.assertProgressBacked(t, orgs) == 0 {
		t.Fatal("no project has progress after a full cycle")
	}
	last := f.Clock.Now().Truncate(time.Hour)
	w := collector.Window{From: last.Add(-48 * time.Hour), To: last}
	f.assertExact(t, orgs[0], w, neon.V2Metrics())
	f.assertExact(t, orgs[1], w, neon.LegacyMetrics())
}

// TestSweep_KilledAtRandomPointsThenExact kills a sweeping process with SIGKILL at random points
// at least 20 times, with revisions landing between attempts, then lets one sweep finish: the
// stored usage must equal ground truth exactly.
func TestSweep_KilledAtRandomPointsThenExact(t *testing.T) {
	f := newFleet(t, 4000)
	org := f.Org(t, "scale")
	// Slow answers stretch the sweep so kills land inside it.
	f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 60 * time.Millisecond, Seed: 3})
	settings := sweepChild{URL: f.URL, DB: f.DB, Now: f.Clock.Now(), Org: org.ID}
	rng := rand.New(rand.NewPCG(1, 2))
	killed, finished := 0, 0
	for attempt := 0; killed < 20; attempt++ {
		if attempt == 60 {
			t.Fatalf("only %d of 60 child sweeps were killed before finishing", killed)
		}
		if attempt%5 == 4 {
			f.Sim.Revise(2 * time.Hour)
		}
		if crashtest.KillWithin(t, "sweep", time.Duration(50+rng.IntN(1150))*time.Millisecond, settings) {
			killed++
		} else {
			finished++
		}
	}
	runs, err := f.store().Runs(context.Background(), org.ID, collector.EndpointV2, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	midSweep := 0
	for _, r := range runs {
		if r.Outcome == collector.OutcomeRunning {
			midSweep++
		}
	}
	t.Logf("%d sweeps killed (%d of them after recording their start), %d finished before the kill", killed, midSweep, finished)
	if midSweep < killed/2 {
		t.Fatalf("only %d of %d kills landed inside a sweep: the test does not exercise crash recovery", midSweep, killed)
	}

	f.Sim.SetFaults(sim.Faults{})
	w := f.window72h()
	if _, err := f.collector(t, org).Sweep(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	f.assertExact(t, org, w, neon.V2Metrics())
}

// TestSweep_FaultsThenExact runs sweeps while the simulator answers 20 % of requests with
// 429/5xx and 2 % with malformed or truncated pages: each sweep completes or fails with an
// error, and once faults stop a re-run is exact.
func TestSweep_FaultsThenExact(t *testing.T) {
	f := newFleet(t, 3000)
	org := f.Org(t, "launch")
	f.Sim.SetFaults(sim.Faults{Rate429: 0.08, Rate500: 0.06, Rate503: 0.06, MalformedRate: 0.01, TruncatedRate: 0.01, Seed: 11})
	c := f.collector(t, org)
	w := f.window72h()
	sum, err := c.Sweep(context.Background(), w)
	if err != nil {
		t.Logf("sweep under faults failed loudly (allowed): %v", err)
	} else {
		if sum.Retries == 0 {
			t.Fatalf("a sweep under 20 %% faults reported no retries")
		}
		f.assertExact(t, org, w, neon.V2Metrics())
	}
	f.Sim.SetFaults(sim.Faults{})
	if _, err := c.Sweep(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	f.assertExact(t, org, w, neon.V2Metrics())
}
