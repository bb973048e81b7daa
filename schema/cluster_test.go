package schema_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
	var wg sync.WaitGroup
	errs := make([]error, len(c.Addrs))
	for i, addr := range c.Addrs {
		node, err := schema.Open(t.Context(), schema.Options{Addr: addr, Cluster: c.Name})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		wg.Go(func() { _, errs[i] = schema.Migrate(t.Context(), node, db, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrate through server %d: %v", i+1, err)
		}
	}
	if n, err := schema.Migrate(t.Context(), conn, db, nil); err != nil || n != 0 {
		t.Fatalf("migrate again = %d, %v; want nothing applied", n, err)
	}
	migs, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]string
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, db)
		tables := columnsOf(t, node, db)
		if first == nil {
			first = tables
		} else if !reflect.DeepEqual(tables, first) {
			t.Errorf("server %d's tables differ from server 1's:\n%v\n%v", i+1, tables, first)
		}
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

// columnsOf returns each table's columns with their types, as one string per table.
func columnsOf(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	return stringPairs(t, conn, `SELECT table, arrayStringConcat(groupArray(concat(name, ' ', type)), ', ')
FROM (SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name)
GROUP BY table`, db)
}

func stringPairs(t *testing.T, conn driver.Conn, query string, args ...any) map[string]string {
	t.Helper()
	rows, err := conn.Query(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// leaseGenerations are the statements of the ClickHouse lease backend's per-generation
// tables. That backend refuses to run on a cluster (its tables are per server), so they are
// left out there.
var leaseGenerations = map[string]bool{"lease.create": true, "lease.heartbeat": true, "lease.release": true,
	"lease.state": true, "lease.drop": true}

// TestCatalog_RunsOnCluster runs every statement of the product, in catalog order, on the
// cluster through all its addresses, and checks that every replica then holds the samples.
func TestCatalog_RunsOnCluster(t *testing.T) {
	c := chtest.NeedCluster(t)
	conn, db := c.New(t)
	ran := 0
	for _, q := range catalog() {
		if leaseGenerations[q.Name] {
			continue
		}
		ran++
		if err := q.Run(t.Context(), conn, db); err != nil {
			t.Errorf("%s: %v", q.Name, err)
		}
	}
	if ran < 50 {
		t.Fatalf("ran only %d statements of the catalog", ran)
	}
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, db)
		var project, metric string
		var total uint64
		err := node.QueryRow(t.Context(), "SELECT project_id, metric, sum(value) FROM "+db+
			".usage_hourly WHERE org_id = ? GROUP BY project_id, metric", schema.SampleOrg).Scan(&project, &metric, &total)
		if err != nil || project != "project-a" || metric != "compute_unit_seconds" || total != 7200 {
			t.Errorf("server %d: usage of the samples = %s %s %d (%v), want project-a compute_unit_seconds 7200", i+1, project, metric, total, err)
		}
	}
}

// Retention on a cluster drops an expired month on every replica.
func TestDropExpiredPartitions_Cluster(t *testing.T) {
	c := chtest.NeedCluster(t)
	conn, db := c.New(t)
	old, kept := time.Date(2020, 1, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ins := schema.Query{Name: "test.facts", Kind: schema.KindInsert,
		SQL:  "INSERT INTO {db}.usage_facts (org_id, project_id, metric, hour, value, version)",
		Rows: [][]any{{"o", "p", "m", old, uint64(1), uint64(1)}, {"o", "p", "m", kept, uint64(2), uint64(1)}}}
	if err := ins.Insert(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	dropped, err := schema.DropExpiredPartitions(t.Context(), conn, db, 25, time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC))
	if err != nil || !reflect.DeepEqual(dropped, []string{"usage_facts/202001"}) {
		t.Fatalf("dropped %v, %v; want usage_facts/202001", dropped, err)
	}
	for i := range c.Addrs {
		node := c.SyncedNode(t, i, db)
		if n := chtest.Count(t, node, "SELECT sum(value) FROM "+db+".usage_facts"); n != 2 {
			t.Errorf("server %d: usage left = %d, want 2 (only March 2026)", i+1, n)
		}
	}
}
