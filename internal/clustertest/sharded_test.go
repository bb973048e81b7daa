package clustertest

import (
	"fmt"
	"maps"
	"testing"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// TestShardedCluster_ReplicaKilledMidSweep is TestCluster_ReplicaKilledMidSweep on the sharded
// cluster (two shards of two replicas): migrate; sweep through all four addresses and kill -9
// server 1 (shard 1's first replica, the one the connection uses) mid-sweep; sweep again while
// it is down, writing shard 1 through its other replica; bring it back. Then usage_hourly read
// through the Distributed tables from every server, and each shard's rows read on each of its
// replicas (their union, a project on one shard only), equal the simulator's ground truth;
// billing pushed through the cluster leaves the ledger, read from every server, and the
// recording fake Stripe exactly at the converted ground truth.
func TestShardedCluster_ReplicaKilledMidSweep(t *testing.T) {
	c, ctl, f := clusterFleet(t, chtest.NeedShardedCluster, 400)
	org, w, truth := sweepKillingServer1(t, ctl, f)
	assertUsage(t, "through server 2 while server 1 is down", c.Via(t, 1), f.DB, org.ID, w, truth)

	ctl.start(t)
	for i := range c.Addrs {
		c.SyncedNode(t, i, f.DB)
		assertUsage(t, fmt.Sprintf("through server %d", i+1), c.Via(t, i), f.DB, org.ID, w, truth)
	}
	assertShards(t, c, f.DB, org.ID, w, truth)
	pushBilling(t, c, f, org)
}

// assertShards checks what each shard holds of org's usage in w, read on each of its replicas
// from the local table: the replicas of a shard hold the same rows, no project is on two
// shards, every shard holds some, and together they equal the ground truth.
func assertShards(t *testing.T, c chtest.Cluster, db, orgID string, w collector.Window, truth map[usageKey]uint64) {
	t.Helper()
	all := map[usageKey]uint64{}
	owner := map[string]int{}
	for s, replicas := range c.Shards(t) {
		var first map[usageKey]uint64
		for _, i := range replicas {
			got := readUsage(t, "local usage", c.Node(t, i), db, "usage_facts_local FINAL", orgID, w)
			if first == nil {
				first = got
				continue
			}
			testworld.DiffCells(t, fmt.Sprintf("shard %d: server %d vs server %d", s+1, i+1, replicas[0]+1), got, first)
		}
		if len(first) == 0 {
			t.Errorf("shard %d holds none of the usage: nothing was split", s+1)
		}
		for k := range first {
			if o, ok := owner[k.project]; ok && o != s {
				t.Errorf("project %s has rows on shards %d and %d", k.project, o+1, s+1)
			}
			owner[k.project] = s
		}
		t.Logf("shard %d: %d non-zero project-metric-hours on each of its %d replicas", s+1, len(first), len(replicas))
		maps.Copy(all, first)
	}
	testworld.DiffCells(t, "the shards together vs ground truth", all, truth)
}
