// Package clustertest runs neonmeter on real ClickHouse 18.16 clusters (scripts/cluster.sh:
// one ZooKeeper and two shards of two replicas on loopback, whose first shard alone is the
// one-shard cluster) and kills a replica under it.
package clustertest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// TestCluster_ReplicaKilledMidSweep: migrate on the cluster; sweep a simulated fleet through
// both replicas' addresses and kill -9 the replica the connection uses in the middle; sweep
// again (after Neon revised recent hours) while it is down, which must route to the other;
// bring it back. Every replica, read directly, then holds usage_hourly equal to the
// simulator's ground truth; billing pushed through the cluster leaves the ledger on every
// replica and the recording fake Stripe exactly at the converted ground truth.
func TestCluster_ReplicaKilledMidSweep(t *testing.T) {
	c, ctl, f := clusterFleet(t, chtest.NeedCluster, 400)
	org, w, truth := sweepKillingServer1(t, ctl, f)
	assertUsage(t, "replica 2 while replica 1 is down", c.Node(t, 1), f.DB, org.ID, w, truth)

	ctl.start(t)
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, f.DB)
		assertUsage(t, fmt.Sprintf("replica %d", i+1), node, f.DB, org.ID, w, truth)
	}
	pushBilling(t, c, f, org)
}

// pushBilling pushes org's billing through cluster c, then checks the ledger on every server
// and the recording fake Stripe against the converted ground truth.
func pushBilling(t *testing.T, c chtest.Cluster, f *testfleet.Fleet, org sim.Org) {
	t.Helper()
	rig := newBillingRig(t, f, org)
	res, err := rig.push()
	if err != nil {
		t.Fatalf("billing push on cluster %s: %v", c.Name, err)
	}
	t.Logf("push: %d requests, %d values pushed", res.Requests, res.Pushed)
	rig.assertExact(t, c, f)
}

// sweepKillingServer1 sweeps org's last 72 h through all the cluster's addresses and kill -9s
// server 1, the one the connection uses, in the middle; then Neon revises recent hours and a
// second sweep runs while server 1 is down, which must route to the others. It returns the
// window and the simulator's ground truth of it.
func sweepKillingServer1(t *testing.T, ctl *control, f *testfleet.Fleet) (sim.Org, collector.Window, map[usageKey]uint64) {
	t.Helper()
	org := f.Org(t, "scale")
	w := window72h(f)
	t.Logf("org %s: %d projects", org.ID, len(org.ProjectIDs))

	// Slow answers and small flushes spread the sweep's writes over a few seconds.
	f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 25 * time.Millisecond, Seed: 5})
	var pages atomic.Int64
	killedAt := int64(-1)
	sweep1 := sweeper(t, f, org, 2000, func(p collector.Progress) {
		if pages.Add(1) == 3 {
			ctl.kill(t, "1")
			killedAt = pages.Load()
		}
	})
	sum1, err1 := sweep1.Sweep(context.Background(), w)
	if killedAt < 0 {
		t.Fatalf("the sweep ended after %d pages, before the kill: it proves nothing", pages.Load())
	}
	// A write in flight to the killed server fails the sweep; one that starts after it goes to
	// another. Either way the sweep had pages left when the server died.
	t.Logf("sweep 1: server 1 killed after page %d; the sweep read %d pages, %s, error: %v", killedAt, pages.Load(), sum1.Outcome, err1)
	if total := int64(len(org.ProjectIDs)+19) / 20; killedAt >= total {
		t.Fatalf("server 1 was killed after page %d of %d: not mid-sweep", killedAt, total)
	}

	f.Sim.SetFaults(sim.Faults{})
	if n := f.Sim.Revise(12 * time.Hour); n == 0 {
		t.Fatal("the simulator revised nothing")
	}
	if _, err := sweeper(t, f, org, 20_000, nil).Sweep(context.Background(), w); err != nil {
		t.Fatalf("sweep 2, server 1 down: %v", err)
	}
	if ctl.up(1) {
		t.Fatal("server 1 answers again before it was restarted: the second sweep did not run without it")
	}
	return org, w, usageTruth(f, org, w)
}

// clusterFleet returns the test cluster need names, its control (every server restarted when the test
// ends) and a simulated fleet of projects whose database lives on the cluster instead of the
// single test server.
func clusterFleet(t *testing.T, need func(testing.TB) chtest.Cluster, projects int) (chtest.Cluster, *control, *testfleet.Fleet) {
	t.Helper()
	c := need(t)
	ctl := newControl(t, c)
	f := testfleet.New(t, testfleet.Options{Projects: projects})
	f.Conn, f.DB = c.New(t)
	return c, ctl, f
}

// sweeper returns a collector of org into the fleet's database (on the cluster), as cmd wires
// it, reading pages of 20 projects, flushing every flush rows and telling progress after every
// page.
func sweeper(t *testing.T, f *testfleet.Fleet, org sim.Org, flush int, progress func(collector.Progress)) *collector.Collector {
	t.Helper()
	col, err := collector.New(collector.Config{Consumption: f.Client, Store: collectorstore.New(f.Conn, f.DB), OrgID: org.ID,
		Endpoint: collector.EndpointV2, Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now,
		PageSize: 20, FlushRows: flush, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	return col
}

func window72h(f *testfleet.Fleet) collector.Window {
	to := f.Clock.Now().Truncate(time.Hour)
	return collector.Window{From: to.Add(-72 * time.Hour), To: to}
}

// usageKey is one (project, metric, hour).
type usageKey struct {
	project, metric string
	hour            time.Time
}

func (k usageKey) String() string {
	return k.project + " " + k.metric + " " + k.hour.Format(time.RFC3339)
}

// usageTruth is the simulator's ground truth of every non-zero (project, metric, hour) of org.
func usageTruth(f *testfleet.Fleet, org sim.Org, w collector.Window) map[usageKey]uint64 {
	out := map[usageKey]uint64{}
	for _, p := range org.ProjectIDs {
		for _, m := range neon.V2Metrics() {
			for h := w.From; h.Before(w.To); h = h.Add(time.Hour) {
				if v := f.Sim.Value(p, m, h); v != 0 {
					out[usageKey{p, m, h}] = uint64(v)
				}
			}
		}
	}
	return out
}

// assertUsage compares every non-zero row of usage_hourly of org in w, read on one replica,
// with the ground truth.
func assertUsage(t *testing.T, where string, node driver.Conn, db, orgID string, w collector.Window, truth map[usageKey]uint64) {
	t.Helper()
	got := readUsage(t, where, node, db, "usage_hourly", orgID, w)
	testworld.DiffCells(t, where+": usage_hourly vs ground truth", got, truth)
	if len(truth) == 0 {
		t.Fatal("the ground truth is empty: the comparison proves nothing")
	}
	t.Logf("%s: %d non-zero project-metric-hours equal the ground truth", where, len(truth))
}

// readUsage reads the non-zero usage of org in w from table of db on node: usage_hourly, or
// on the sharded cluster a server's local usage_facts_local FINAL (deduplicated as
// usage_hourly is).
func readUsage(t *testing.T, where string, node driver.Conn, db, table, orgID string, w collector.Window) map[usageKey]uint64 {
	t.Helper()
	q := schema.Query{Name: "test.usage", Kind: schema.KindSelect, Args: []any{orgID, w.From, w.To},
		SQL: "SELECT project_id, metric, hour, value FROM {db}." + table + " WHERE org_id = ? AND hour >= ? AND hour < ? AND value != 0"}
	got := map[usageKey]uint64{}
	err := q.Each(t.Context(), node, db, func(row schema.Row) error {
		var (
			k usageKey
			v uint64
		)
		err := row.Scan(&k.project, &k.metric, &k.hour, &v)
		k.hour = k.hour.UTC()
		got[k] = v
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return got
}

// control drives scripts/cluster.sh, the same script that started the cluster.
type control struct {
	root string
}

// newControl finds the script and checks that its first servers are the cluster's addresses,
// in order, so that "server 1" is the first address. It restarts every server when the test ends,
// passed or not.
func newControl(t *testing.T, c chtest.Cluster) *control {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctl := &control{root: root}
	if got := strings.TrimSpace(ctl.run(t, "addrs", fmt.Sprint(len(c.Addrs)))); got != c.AddrList() {
		t.Fatalf("scripts/cluster.sh addrs = %q, but %s = %q: start the cluster with the same settings", got, chtest.EnvClusterAddrs, c.AddrList())
	}
	t.Cleanup(func() { ctl.start(t) })
	return ctl
}

func (c *control) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.root, "scripts", "cluster.sh"), args...)
	cmd.Dir = c.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kill kills server which (1-based, as a string) or ZooKeeper ("zk") with SIGKILL.
func (c *control) kill(t *testing.T, which string) { c.run(t, "kill", which) }

// start starts whatever server is down and waits until all answer.
func (c *control) start(t *testing.T) { c.run(t, "start") }

// up reports whether server n answers.
func (c *control) up(n int) bool {
	cmd := exec.Command(filepath.Join(c.root, "scripts", "cluster.sh"), "status")
	cmd.Dir = c.root
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), fmt.Sprintf("server %d: up", n))
}
