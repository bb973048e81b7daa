package schema_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// The tests of this file run on the sharded ClickHouse 18.16 cluster of scripts/cluster.sh (two
// shards of two replicas and a ZooKeeper): the tables that grow with usage are split across the
// shards by project (billing's ledger by customer) behind Distributed tables, every other
// table is whole on every server.

// shardedTables are the tables split across the shards.
var shardedTables = []string{"billing_ledger", "collection_progress", "usage_coarse", "usage_facts", "usage_revisions"}

func TestOpen_ShardedCluster(t *testing.T) {
	c := chtest.NeedShardedCluster(t)
	conn := c.Connect(t)
	if schema.ClusterOf(conn) != c.Name || !schema.Sharded(conn) {
		t.Fatalf("ClusterOf = %q, Sharded = %v; want %q, true", schema.ClusterOf(conn), schema.Sharded(conn), c.Name)
	}
	var got uint64
	if err := conn.QueryRow(t.Context(), "SELECT toUInt64(value) FROM system.settings WHERE name = 'insert_distributed_sync'").Scan(&got); err != nil || got != 1 {
		t.Fatalf("insert_distributed_sync = %d (%v), want 1 on a sharded connection", got, err)
	}
	// The same servers' one-shard cluster still opens as one shard, without the settings.
	one, err := schema.Open(t.Context(), schema.Options{Addr: c.Addrs[0], Cluster: chtest.DefaultCluster})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if err := one.QueryRow(t.Context(), "SELECT toUInt64(value) FROM system.settings WHERE name = 'insert_distributed_sync'").Scan(&got); err != nil || got != 0 || schema.Sharded(one) {
		t.Fatalf("cluster %s: sharded = %v, insert_distributed_sync = %d (%v); want one shard with the defaults", chtest.DefaultCluster, schema.Sharded(one), got, err)
	}
}

// Two migrate runs racing through servers of different shards both succeed. Every server then
// has each sharded table as a local table replicated within its shard plus a Distributed table
// with the same columns, and every other table replicated on all four servers.
func TestMigrate_ShardedCluster(t *testing.T) {
	c := chtest.NeedShardedCluster(t)
	conn := c.Connect(t)
	db := chtest.Database(t, conn)
	shards := c.Shards(t)
	var firstOfEach []string
	for _, shard := range shards {
		firstOfEach = append(firstOfEach, c.Addrs[shard[0]])
	}
	migrateRacing(t, c.Name, conn, db, firstOfEach, "shard")
	var first map[string]string
	for s, replicas := range shards {
		for _, i := range replicas {
			node := c.SyncedNode(t, i, db)
			checkShardedEngines(t, i, s+1, node, db, sameColumns(t, i, node, db, &first))
		}
	}
	if !strings.Contains(first["billing_ledger"], "accounted_value Int64") {
		t.Fatalf("billing_ledger (Distributed) lacks migration 0010's column: %q", first["billing_ledger"])
	}
}

// checkShardedEngines checks the tables of db on server i of shard: engines and ZooKeeper paths.
func checkShardedEngines(t *testing.T, i, shard int, node driver.Conn, db string, columns map[string]string) {
	t.Helper()
	engines := stringPairs(t, node, "SELECT name, engine FROM system.tables WHERE database = ?", db)
	paths := stringPairs(t, node, "SELECT table, zookeeper_path FROM system.replicas WHERE database = ?", db)
	sharded := map[string]bool{}
	for _, name := range shardedTables {
		sharded[name] = true
		local := name + "_local"
		if engines[name] != "Distributed" || !strings.HasPrefix(engines[local], "Replicated") {
			t.Errorf("server %d: %s is %q and %s is %q, want Distributed over a replicated table", i+1, name, engines[name], local, engines[local])
		}
		if columns[name] != columns[local] {
			t.Errorf("server %d: %s's columns %q differ from %s's %q", i+1, name, columns[name], local, columns[local])
		}
		if want := fmt.Sprintf("/clickhouse/tables/%d/%s/%s", shard, db, local); paths[local] != want {
			t.Errorf("server %d: %s's ZooKeeper path %q, want %q", i+1, local, paths[local], want)
		}
	}
	for name, engine := range engines {
		if sharded[name] || sharded[strings.TrimSuffix(name, "_local")] || engine == "View" {
			continue
		}
		if want := "/clickhouse/tables/all/" + db + "/" + name; !strings.HasPrefix(engine, "Replicated") || paths[name] != want {
			t.Errorf("server %d: %s is %s at %q, want a table replicated on every server at %s", i+1, name, engine, paths[name], want)
		}
	}
}

// TestCatalog_RunsOnShardedCluster runs every statement of the product, in catalog order, on
// the sharded cluster. A statement whose IN or JOIN reads a Distributed table inside a query
// of another would fail here (18.16's distributed_product_mode 'deny'). Every server then reads
// the samples through the Distributed tables.
func TestCatalog_RunsOnShardedCluster(t *testing.T) {
	runCatalogOn(t, chtest.NeedShardedCluster(t))
}

// Every version of a project's facts lands on one shard (on both its replicas), so FINAL read
// through the Distributed table keeps the newest; an insert retried with the same block is
// deduplicated by that shard; rows spread over both shards. The ledger's rows go by customer.
func TestSharded_ProjectOnOneShard(t *testing.T) {
	c := chtest.NeedShardedCluster(t)
	conn, db := c.New(t)
	hour := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	facts := func(version uint64) schema.Query {
		q := factsInsert()
		for p := range 40 {
			for h := range 3 {
				q.Rows = append(q.Rows, []any{"o", fmt.Sprintf("p%02d", p), "m", hour.Add(time.Duration(h) * time.Hour), version * 10, version})
			}
		}
		return q
	}
	for _, q := range []schema.Query{facts(1), facts(1), facts(2), facts(2)} { // each sent twice, as a retry does
		if err := q.Insert(t.Context(), conn, db); err != nil {
			t.Fatal(err)
		}
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".usage_facts"); n != 240 {
		t.Fatalf("usage_facts holds %d rows, want 240 (two versions of 120; the retried blocks deduplicated)", n)
	}
	if n := chtest.Count(t, conn, "SELECT sum(value) FROM "+db+".usage_hourly"); n != 120*20 {
		t.Fatalf("usage_hourly sums %d, want %d (the newest version of each row)", n, 120*20)
	}
	assertOneShardEach(t, c, db, "usage_facts", "project_id", 40, 6) // 3 hours × 2 versions
	ledger := schema.Query{Name: "test.ledger", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.billing_ledger (customer_id, target, hour, sink, value, revision, status, version)"}
	for cus := range 20 {
		for v := range 2 {
			ledger.Rows = append(ledger.Rows, []any{fmt.Sprint("cus_", cus), "neon_compute", hour, "meter", int64(v), uint32(1), "intent", uint64(v + 1)})
		}
	}
	if err := ledger.Insert(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
	assertOneShardEach(t, c, db, "billing_ledger", "customer_id", 20, 2)
}

// assertOneShardEach checks that every one of want keys (values of column key) of the split
// table has its rows, perKey of them, on one shard only, the same on each of its replicas.
func assertOneShardEach(t *testing.T, c chtest.Cluster, db, table, key string, want, perKey int) {
	t.Helper()
	owner := map[string]int{}
	for s, replicas := range c.Shards(t) {
		var held []string
		for _, i := range replicas {
			node := c.SyncedNode(t, i, db)
			got := keyRows(t, node, db, table, key)
			if held != nil && !reflect.DeepEqual(got, held) {
				t.Errorf("%s shard %d: replicas hold different rows: %v vs %v", table, s+1, got, held)
			}
			held = got
		}
		if len(held) == 0 {
			t.Errorf("%s shard %d holds no rows: nothing was split", table, s+1)
		}
		for _, row := range held {
			k, n, _ := strings.Cut(row, "=")
			if n != fmt.Sprint(perKey) {
				t.Errorf("%s shard %d holds %s rows of %s, want all %d", table, s+1, n, k, perKey)
			}
			if prev, ok := owner[k]; ok {
				t.Errorf("%s: %s on shards %d and %d", table, k, prev+1, s+1)
			}
			owner[k] = s
		}
	}
	if len(owner) != want {
		t.Fatalf("%s: %d keys found on the shards, want %d", table, len(owner), want)
	}
}

// keyRows lists "key=rows" of one server's local part of table.
func keyRows(t *testing.T, node driver.Conn, db, table, key string) []string {
	t.Helper()
	rows, err := node.Query(t.Context(), "SELECT "+key+", count() FROM "+db+"."+table+"_local GROUP BY "+key+" ORDER BY "+key)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			k string
			n uint64
		)
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", k, n))
	}
	return out
}

// Retention on a sharded cluster finds an expired month wherever a shard holds it and drops it
// on every shard's replicas.
func TestDropExpiredPartitions_ShardedCluster(t *testing.T) {
	c := chtest.NeedShardedCluster(t)
	conn, db := c.New(t)
	var rows [][]any
	for p := range 20 {
		rows = append(rows, []any{"o", fmt.Sprint("p", p), "m", keptHour, uint64(2), uint64(1)})
	}
	rows = append(rows, []any{"o", "p0", "m", expiredHour, uint64(1), uint64(1)}) // one shard only
	insertFacts(t, conn, db, rows...)
	dropExpired(t, conn, db)
	var sum uint64
	for _, replicas := range c.Shards(t) {
		for _, i := range replicas {
			node := c.SyncedNode(t, i, db)
			if n := chtest.Count(t, node, "SELECT count() FROM "+db+".usage_facts_local WHERE hour < '2021-01-01 00:00:00'"); n != 0 {
				t.Errorf("server %d: %d expired rows left", i+1, n)
			}
		}
		sum += chtest.Count(t, c.Node(t, replicas[0]), "SELECT sum(value) FROM "+db+".usage_facts_local")
	}
	if sum != 40 {
		t.Errorf("the shards hold %d of usage, want 40 (March 2026 on both)", sum)
	}
}

// A database keeps the layout migrate gave it: one created on the one-shard cluster is refused
// on the sharded cluster of the same servers, and the other way round, naming the cause.
func TestMigrate_LayoutOfAnotherShapeRefused(t *testing.T) {
	c := chtest.NeedShardedCluster(t)
	sharded := c.Connect(t)
	one, err := schema.Open(t.Context(), schema.Options{Addr: c.Addrs[0], Cluster: chtest.DefaultCluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { one.Close() }) // after the databases are dropped
	oneDB, shardedDB := chtest.Database(t, one), chtest.Database(t, sharded)
	if _, err := schema.Migrate(t.Context(), one, oneDB, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Migrate(t.Context(), sharded, shardedDB, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Migrate(t.Context(), sharded, oneDB, nil); err == nil || !strings.Contains(err.Error(), "created for one server or one shard") {
		t.Errorf("migrate a one-shard database on the sharded cluster: %v, want refused", err)
	}
	if _, err := schema.Migrate(t.Context(), one, shardedDB, nil); err == nil || !strings.Contains(err.Error(), "created on a cluster of several shards") {
		t.Errorf("migrate a sharded database on the one-shard cluster: %v, want refused", err)
	}
}
