package collector_test

import (
	"context"
	"math/rand/v2"
	"os"
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

// Environment of a child sweep process (see TestMain).
const (
	envChildURL = "NEONMETER_TEST_SWEEP_URL"
	envChildDB  = "NEONMETER_TEST_SWEEP_DB"
	envChildOrg = "NEONMETER_TEST_SWEEP_ORG"
	envChildNow = "NEONMETER_TEST_SWEEP_NOW"
)

func TestMain(m *testing.M) { crashtest.Main(m, childSweep) }

// childSweep runs one sweep in this process, to be killed by the parent test.
func childSweep() error {
	now, err := time.Parse(time.RFC3339, os.Getenv(envChildNow))
	if err != nil {
		return err
	}
	client, err := neon.NewClient(testfleet.ClientConfig(os.Getenv(envChildURL)))
	if err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := chtest.Open(ctx)
	if err != nil {
		return err
	}
	c, err := collector.New(collector.Config{
		Consumption: client, Store: collectorstore.New(conn, os.Getenv(envChildDB)),
		OrgID: os.Getenv(envChildOrg), Lookback: 72 * time.Hour, Now: func() time.Time { return now },
		FlushRows: 1000 + rand.IntN(5000),
	})
	if err != nil {
		return err
	}
	_, err = c.Sweep(ctx, collector.Window{})
	return err
}

// TestSweep_KilledAtRandomPointsThenExact kills a sweeping process with SIGKILL at random points
// at least 20 times, with revisions landing between attempts, then lets one sweep finish: the
// stored usage must equal ground truth exactly.
func TestSweep_KilledAtRandomPointsThenExact(t *testing.T) {
	f := newFleet(t, 4000)
	org := f.Org(t, "scale")
	// Slow answers stretch the sweep so kills land inside it.
	f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 60 * time.Millisecond, Seed: 3})
	rng := rand.New(rand.NewPCG(1, 2))
	killed, finished := 0, 0
	for attempt := 0; killed < 20; attempt++ {
		if attempt == 60 {
			t.Fatalf("only %d of 60 child sweeps were killed before finishing", killed)
		}
		if attempt%5 == 4 {
			f.Sim.Revise(2 * time.Hour)
		}
		child := crashtest.Start(t, envChildURL+"="+f.URL, envChildDB+"="+f.DB,
			envChildOrg+"="+org.ID, envChildNow+"="+f.Clock.Now().Format(time.RFC3339))
		select {
		case err := <-child.Done:
			if err != nil {
				t.Fatalf("child sweep failed on its own: %v\n%s", err, child.Output())
			}
			finished++
		case <-time.After(time.Duration(50+rng.IntN(1150)) * time.Millisecond):
			child.Kill()
			killed++
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
