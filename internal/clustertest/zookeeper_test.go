package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
)

// TestCluster_ZooKeeperDown: with ZooKeeper killed the replicated tables turn read-only. A
// sweep fails, a billing push fails before it sends anything to Stripe (its intent write comes
// first), and every replica still answers reads with what it held. Once ZooKeeper is back the
// tables become writable by themselves, and the next sweep and push leave usage, the ledger on
// every replica and the fake Stripe exact.
func TestCluster_ZooKeeperDown(t *testing.T) {
	c, ctl, f := clusterFleet(t, chtest.NeedCluster, 200)
	org := f.Org(t, "launch")
	w := window72h(f)
	ctx := context.Background()
	if _, err := sweeper(t, f, org, 20_000, nil).Sweep(ctx, w); err != nil {
		t.Fatal(err)
	}
	before := usageTruth(f, org, w)
	rig := newBillingRig(t, f, org)
	for i := range c.Addrs {
		c.SyncedNode(t, i, f.DB)
	}

	ctl.kill(t, "zk")
	waitReadOnly(t, c, f.DB, true)
	if n := f.Sim.Revise(12 * time.Hour); n == 0 {
		t.Fatal("the simulator revised nothing")
	}
	if _, err := sweeper(t, f, org, 20_000, nil).Sweep(ctx, w); err == nil {
		t.Fatal("a sweep succeeded with ZooKeeper down")
	} else {
		t.Logf("sweep with ZooKeeper down: %v", err)
	}
	if _, err := rig.push(); err == nil {
		t.Fatal("a billing push succeeded with ZooKeeper down")
	}
	if n := len(rig.stripe.Fake.Requests()); n != 0 {
		t.Fatalf("a push with ZooKeeper down sent %d requests to Stripe, want none", n)
	}
	for i := range c.Addrs {
		assertUsage(t, fmt.Sprintf("replica %d with ZooKeeper down", i+1), c.Node(t, i), f.DB, org.ID, w, before)
	}

	ctl.start(t)
	waitReadOnly(t, c, f.DB, false)
	if _, err := sweeper(t, f, org, 20_000, nil).Sweep(ctx, w); err != nil {
		t.Fatalf("sweep after ZooKeeper came back: %v", err)
	}
	if _, err := rig.push(); err != nil {
		t.Fatalf("push after ZooKeeper came back: %v", err)
	}
	truth := usageTruth(f, org, w)
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, f.DB)
		assertUsage(t, fmt.Sprintf("replica %d", i+1), node, f.DB, org.ID, w, truth)
	}
	rig.assertExact(t, c, f)
}

// waitReadOnly waits until every replicated table of db on every replica is read-only (or none
// is), as the servers see their ZooKeeper session.
func waitReadOnly(t *testing.T, c chtest.Cluster, db string, want bool) {
	t.Helper()
	start := time.Now()
	for i := range c.Addrs {
		node := c.Node(t, i)
		for {
			var tables, readOnly uint64
			err := node.QueryRow(t.Context(), "SELECT count(), countIf(is_readonly) FROM system.replicas WHERE database = ?", db).Scan(&tables, &readOnly)
			if err != nil {
				t.Fatalf("replica %d: %v", i+1, err)
			}
			if tables > 0 && (readOnly == tables) == want && (readOnly == 0) == !want {
				break
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("replica %d: %d of %d tables read-only after a minute, want all read-only = %v", i+1, readOnly, tables, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("replicated tables read-only = %v on every replica after %v", want, time.Since(start).Round(100*time.Millisecond))
}
