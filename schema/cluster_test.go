package schema_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// The tests of this file run on the ClickHouse 18.16 cluster of scripts/cluster.sh (one shard,
// two replicas and a ZooKeeper): what runs on one server runs there too, ON CLUSTER, into
// replicated tables that every replica holds in full.

func TestOpen_Cluster(t *testing.T) {
	c := chtest.NeedCluster(t)
	conn := c.Connect(t)
	if got := schema.ClusterOf(conn); got != c.Name {
		t.Fatalf("ClusterOf = %q, want %q", got, c.Name)
	}
	// An address that refuses is passed over: the next one answers.
	refused := "127.0.0.1:1"
	routed, err := schema.Open(t.Context(), schema.Options{Addr: refused + "," + c.AddrList(), Cluster: c.Name, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open with a refusing first address: %v", err)
	}
	defer routed.Close()
	var replica string
	if err := routed.QueryRow(t.Context(), "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&replica); err != nil || replica != "s1r1" {
		t.Fatalf("query went to replica %q (%v), want the first answering address %s (s1r1)", replica, err, c.Addrs[0])
	}
	tests := []struct {
		name string
		o    schema.Options
		want string
	}{
		{"unknown cluster", schema.Options{Addr: c.AddrList(), Cluster: "no_such_cluster"}, "no_such_cluster is not among the server's clusters"},
		{"bad cluster name", schema.Options{Addr: c.Addrs[0], Cluster: "bad-name"}, `cluster name "bad-name"`},
		{"several addresses without a cluster", schema.Options{Addr: c.AddrList()}, "several addresses are the replicas of a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { openFails(t, tt.o, tt.want) })
	}
}

func TestSplitAddrs(t *testing.T) {
	got, err := schema.SplitAddrs("h1:9000, h2:9001")
	if err != nil || !reflect.DeepEqual(got, []string{"h1:9000", "h2:9001"}) {
		t.Fatalf("SplitAddrs = %q, %v", got, err)
	}
	for list, want := range map[string]string{
		"h1:9000,h2":         `address "h2": must be host:port`,
		"h1:9000,":           `address "": must be host:port`,
		":9000":              `address ":9000": must be host:port`,
		"h1:0":               `address "h1:0": port must be`,
		"h1:http":            `address "h1:http": port must be`,
		"h1:9000,h1:9000":    `address "h1:9000": listed twice`,
		"[::1]:9000,h:70000": `address "h:70000": port must be`,
	} {
		if _, err := schema.SplitAddrs(list); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("SplitAddrs(%q) = %v, want %s", list, err, want)
		}
	}
}

// Two migrate runs racing through different replicas both succeed; every replica then has
// every table, replicated, with the same columns, and schema_migrations (replicated too) lists
// every migration once on each. A third run applies nothing.
func TestMigrate_Cluster(t *testing.T) {
	c := chtest.NeedCluster(t)
	conn := c.Connect(t)
	db := chtest.Database(t, conn)
	migrateRacing(t, c.Name, conn, db, c.Addrs, "server")
	migs, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]string
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, db)
		sameColumns(t, i, node, db, &first)
		engines := stringPairs(t, node, "SELECT name, engine FROM system.tables WHERE database = ?", db)
		for name, engine := range engines {
			if !strings.HasPrefix(engine, "Replicated") && engine != "View" {
				t.Errorf("server %d: %s.%s has engine %s, want a replicated one", i+1, db, name, engine)
			}
		}
		if n := chtest.Count(t, node, "SELECT count() FROM "+db+".schema_migrations FINAL"); n != uint64(len(migs)) {
			t.Errorf("server %d: schema_migrations has %d versions, want %d", i+1, n, len(migs))
		}
	}
	if first["collection_runs"] == "" || !strings.Contains(first["collection_runs"], "deadline_at") {
		t.Fatalf("collection_runs lacks migration 0009's columns: %q", first["collection_runs"])
	}
}

// TestCatalog_RunsOnCluster runs every statement of the product, in catalog order, on the
// cluster through all its addresses, and checks that every replica then holds the samples.
func TestCatalog_RunsOnCluster(t *testing.T) {
	runCatalogOn(t, chtest.NeedCluster(t))
}

// Retention on a cluster drops an expired month on every replica.
func TestDropExpiredPartitions_Cluster(t *testing.T) {
	c := chtest.NeedCluster(t)
	conn, db := c.New(t)
	insertFacts(t, conn, db, []any{"o", "p", "m", expiredHour, uint64(1), uint64(1)}, []any{"o", "p", "m", keptHour, uint64(2), uint64(1)})
	dropExpired(t, conn, db)
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, db)
		if n := chtest.Count(t, node, "SELECT sum(value) FROM "+db+".usage_facts"); n != 2 {
			t.Errorf("server %d: usage left = %d, want 2 (only March 2026)", i+1, n)
		}
	}
}
