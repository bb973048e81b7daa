package schema_test

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// What the tests of one-shard (cluster_test.go) and sharded clusters (sharded_test.go) do alike.

// migrateRacing migrates db through each of addrs (the servers of cluster that unit names, in
// order) at once, the race of several neonmeter processes starting together: every run must
// succeed, and a run after them through conn must apply nothing.
func migrateRacing(t *testing.T, cluster string, conn driver.Conn, db string, addrs []string, unit string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(addrs))
	for i, addr := range addrs {
		node, err := schema.Open(t.Context(), schema.Options{Addr: addr, Cluster: cluster})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		wg.Go(func() { _, errs[i] = schema.Migrate(t.Context(), node, db, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrate through %s %d: %v", unit, i+1, err)
		}
	}
	if n, err := schema.Migrate(t.Context(), conn, db, nil); err != nil || n != 0 {
		t.Fatalf("migrate again = %d, %v; want nothing applied", n, err)
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

// sameColumns reads the tables of db on server i and checks that they have the same columns as
// those read first (kept in *first): every server of a cluster sees the same tables.
func sameColumns(t *testing.T, i int, node driver.Conn, db string, first *map[string]string) map[string]string {
	t.Helper()
	tables := columnsOf(t, node, db)
	if *first == nil {
		*first = tables
	} else if !reflect.DeepEqual(tables, *first) {
		t.Errorf("server %d's tables differ from the first server's:\n%v\n%v", i+1, tables, *first)
	}
	return tables
}

// runCatalogOn runs every statement of the catalog but the lease backend's on a new database
// of cluster c, then reads the samples' usage on each of its servers.
func runCatalogOn(t *testing.T, c chtest.Cluster) {
	t.Helper()
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

// Retention of 25 months on 15 March 2026 expires expiredHour's month (January 2020) and keeps
// keptHour's (March 2026).
var (
	expiredHour = time.Date(2020, 1, 5, 0, 0, 0, 0, time.UTC)
	keptHour    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

// dropExpired runs that retention on db and checks that it dropped usage_facts' January 2020
// and nothing else.
func dropExpired(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	dropped, err := schema.DropExpiredPartitions(t.Context(), conn, db, 25, time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC))
	if err != nil || !reflect.DeepEqual(dropped, []string{"usage_facts/202001"}) {
		t.Fatalf("dropped %v, %v; want usage_facts/202001", dropped, err)
	}
}

// factsInsert is an insert of rows (org, project, metric, hour, value, version) into usage_facts.
func factsInsert(rows ...[]any) schema.Query {
	return schema.Query{Name: "test.facts", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.usage_facts (org_id, project_id, metric, hour, value, version)", Rows: rows}
}

// insertFacts inserts rows into db's usage_facts.
func insertFacts(t *testing.T, conn driver.Conn, db string, rows ...[]any) {
	t.Helper()
	if err := factsInsert(rows...).Insert(t.Context(), conn, db); err != nil {
		t.Fatal(err)
	}
}
