package chtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/schema"
)

// The test clusters are the ones scripts/cluster.sh starts (make cluster): a ZooKeeper and
// ClickHouse 18.16 servers on loopback, two shards of two replicas (the sharded cluster), whose
// first shard alone is the one-shard cluster.
const (
	// EnvClusterAddrs names the variable holding the one-shard cluster's native addresses,
	// comma-separated, in the order of scripts/cluster.sh's server numbers.
	EnvClusterAddrs = "NEONMETER_TEST_CLUSTER_ADDRS"
	// EnvCluster names the variable holding the cluster's name; DefaultCluster when unset.
	EnvCluster     = "NEONMETER_TEST_CLUSTER"
	DefaultCluster = "neonmeter_test"
	// EnvShardedClusterAddrs and EnvShardedCluster are the same for the sharded cluster.
	EnvShardedClusterAddrs = "NEONMETER_TEST_SHARDED_CLUSTER_ADDRS"
	EnvShardedCluster      = "NEONMETER_TEST_SHARDED_CLUSTER"
	DefaultShardedCluster  = "neonmeter_sharded"
)

// Cluster is the test cluster: its name and its servers' addresses.
type Cluster struct {
	Name  string
	Addrs []string
}

// AddrList returns the addresses as NEONMETER_CLICKHOUSE_ADDR takes them.
func (c Cluster) AddrList() string { return strings.Join(c.Addrs, ",") }

// NeedCluster returns the test cluster named by the environment. Without it the test is
// skipped, except in CI (CI=true), where a missing cluster fails it like any missing service.
func NeedCluster(t testing.TB) Cluster {
	t.Helper()
	c := ClusterEnv(t)
	LockCluster(t)
	return c
}

// ClusterEnv is NeedCluster for a test that already holds the cluster lock (through
// leasetest's ZooKeeper, say): the same cluster, without taking the lock again.
func ClusterEnv(t testing.TB) Cluster {
	t.Helper()
	return clusterEnv(t, EnvClusterAddrs, EnvCluster, DefaultCluster)
}

// NeedShardedCluster is NeedCluster for the sharded cluster (several shards of replicas).
func NeedShardedCluster(t testing.TB) Cluster {
	t.Helper()
	c := clusterEnv(t, EnvShardedClusterAddrs, EnvShardedCluster, DefaultShardedCluster)
	LockCluster(t)
	return c
}

func clusterEnv(t testing.TB, addrsVar, nameVar, defaultName string) Cluster {
	t.Helper()
	list := NeedEnv(t, addrsVar, "chtest: the ClickHouse cluster is required: set "+addrsVar+" (make cluster; `make test` sets it)")
	addrs, err := schema.SplitAddrs(list)
	if err != nil {
		t.Fatalf("chtest: %s: %v", addrsVar, err)
	}
	name := os.Getenv(nameVar)
	if name == "" {
		name = defaultName
	}
	return Cluster{Name: name, Addrs: addrs}
}

// Shards returns the indexes in Addrs of each shard's replicas, shard by shard, as the
// cluster's servers define it (system.clusters); every address must be one of its hosts.
func (c Cluster) Shards(t testing.TB) [][]int {
	t.Helper()
	rows, err := c.Node(t, 0).Query(t.Context(),
		"SELECT shard_num, concat(host_name, ':', toString(port)) FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", c.Name)
	if err != nil {
		t.Fatalf("chtest: shards of %s: %v", c.Name, err)
	}
	defer rows.Close()
	var shards [][]int
	seen := 0
	for rows.Next() {
		var (
			shard uint32
			addr  string
		)
		if err := rows.Scan(&shard, &addr); err != nil {
			t.Fatal(err)
		}
		i := slices.Index(c.Addrs, addr)
		if i < 0 {
			t.Fatalf("chtest: cluster %s's host %s is not among the test's addresses %v", c.Name, addr, c.Addrs)
		}
		for len(shards) < int(shard) {
			shards = append(shards, nil)
		}
		shards[shard-1] = append(shards[shard-1], i)
		seen++
	}
	if err := rows.Err(); err != nil || seen != len(c.Addrs) {
		t.Fatalf("chtest: cluster %s has %d hosts (%v), the test's addresses are %d", c.Name, seen, err, len(c.Addrs))
	}
	return shards
}

// NeedEnv returns the environment variable name, which names a service the test needs. When it
// is empty the test is skipped saying why, except in CI (CI=true), where a missing service fails
// the test like any other.
func NeedEnv(t testing.TB, name, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return v
}

// LockCluster holds the test cluster and its ZooKeeper for this test alone until it ends
// (waiting while another test holds them). Test binaries of several packages run at once, and
// a test that kills a replica or ZooKeeper would fail another's statements: every test using
// the cluster or its ZooKeeper takes this lock (NeedCluster does).
func LockCluster(t testing.TB) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "neonmeter-test-cluster.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("chtest: cluster lock: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("chtest: cluster lock %s: %v", path, err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("chtest: waited %v for the cluster (another test held it)", waited.Round(time.Second))
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// Connect connects to the cluster through all its addresses, as neonmeter does, closing the
// connection when the test ends.
func (c Cluster) Connect(t testing.TB) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := schema.Open(ctx, schema.Options{Addr: c.AddrList(), Cluster: c.Name, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("chtest: the ClickHouse cluster is required: %v\nstart it with `make cluster`", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Node connects to server i (0-based) alone, to read what that replica holds.
func (c Cluster) Node(t testing.TB, i int) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := schema.Open(ctx, schema.Options{Addr: c.Addrs[i], DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("chtest: cluster server %d: %v", i+1, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Via connects to the cluster through server i (0-based) alone, as neonmeter would with that
// one address: statements render for the cluster, and on a sharded cluster reads and writes
// of the Distributed tables go from that server to every shard.
func (c Cluster) Via(t testing.TB, i int) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := schema.Open(ctx, schema.Options{Addr: c.Addrs[i], Cluster: c.Name, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("chtest: cluster %s through server %d: %v", c.Name, i+1, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// syncTimeout bounds a replica's catching up: a restarted one's old ZooKeeper session must
// expire first (4 s in scripts/cluster.sh) before it fetches what it missed.
const syncTimeout = 3 * time.Minute

// SyncedNode connects to server i (0-based) alone, as Node does, once that replica holds
// everything the others wrote to database db (SyncReplicas), waiting at most syncTimeout.
func (c Cluster) SyncedNode(t testing.TB, i int, db string) driver.Conn {
	t.Helper()
	node := c.Node(t, i)
	ctx, cancel := context.WithTimeout(t.Context(), syncTimeout)
	defer cancel()
	start := time.Now()
	if err := SyncReplicas(ctx, node, db); err != nil {
		t.Fatalf("chtest: cluster server %d: %v", i+1, err)
	}
	t.Logf("chtest: cluster server %d in sync after %v", i+1, time.Since(start).Round(100*time.Millisecond))
	return node
}

// New connects to the cluster and creates a fresh database on it, migrated ON CLUSTER; the
// database is dropped on every replica when the test passes.
func (c Cluster) New(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn := c.Connect(t)
	db := Database(t, conn)
	if _, err := schema.Migrate(t.Context(), conn, db, Logger(t)); err != nil {
		t.Fatalf("chtest: migrate %s on cluster %s: %v", db, c.Name, err)
	}
	return conn, db
}

// SyncReplicas waits until the replica conn is connected to has fetched everything the other
// replicas wrote to database db's replicated tables: first until it is back in the cluster (a
// restarted replica is read-only, or not yet active, until its old ZooKeeper session expired),
// then SYSTEM SYNC REPLICA on each table. ctx bounds the wait.
func SyncReplicas(ctx context.Context, conn driver.Conn, db string) error {
	for {
		var tables, lagging uint64
		err := conn.QueryRow(ctx, `SELECT count(), countIf(is_readonly OR is_session_expired OR active_replicas < total_replicas)
FROM system.replicas WHERE database = ?`, db).Scan(&tables, &lagging)
		switch {
		case err != nil:
			return fmt.Errorf("replicas of %s: %w", db, err)
		case tables == 0:
			return fmt.Errorf("database %s has no replicated tables on this server", db)
		case lagging == 0:
			return syncTables(ctx, conn, db)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replicas of %s: %d of %d tables not back in the cluster: %w", db, lagging, tables, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func syncTables(ctx context.Context, conn driver.Conn, db string) error {
	rows, err := conn.Query(ctx, "SELECT table FROM system.replicas WHERE database = ? ORDER BY table", db)
	if err != nil {
		return fmt.Errorf("list replicated tables of %s: %w", db, err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, table := range tables {
		if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+db+"."+table); err != nil {
			return fmt.Errorf("sync replica %s.%s: %w", db, table, err)
		}
	}
	return nil
}
