//go:build chdb

package dashboards_test

// Runs every ClickHouse panel query on current ClickHouse through chDB (libchdb.so at
// $CHDB_LIB_PATH), after every migration: a panel that only 18.16 accepts cannot ship.

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chdb-io/chdb-go/chdb"

	"github.com/neonmeter/neonmeter/dashboards"
	"github.com/neonmeter/neonmeter/schema"
)

func TestChdbDashboards(t *testing.T) {
	if lib := os.Getenv("CHDB_LIB_PATH"); lib == "" {
		t.Fatalf("CHDB_LIB_PATH is not set: point it at libchdb.so (make test sets it)")
	} else if _, err := os.Stat(lib); err != nil {
		t.Fatalf("CHDB_LIB_PATH: %v", err)
	}
	sess, err := chdb.NewSession(t.TempDir())
	if err != nil {
		t.Fatalf("chdb session: %v", err)
	}
	defer sess.Close()
	run := func(sql string) string {
		t.Helper()
		res, err := sess.Query(sql, "TabSeparated")
		if err != nil {
			t.Fatalf("chdb: %v\n%s", err, sql)
		}
		defer res.Free()
		if err := res.Error(); err != nil {
			t.Fatalf("chdb: %v\n%s", err, sql)
		}
		return res.String()
	}
	const db = "neonmeter_dashboards"
	run("CREATE DATABASE IF NOT EXISTS " + db)
	migs, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		stmts, err := m.Statements(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			run(s)
		}
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour).Format(time.DateTime)
	run("INSERT INTO " + db + ".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version) VALUES " +
		"('o', 'p', 'compute_unit_seconds', toDateTime('" + hour + "', 'UTC'), 7200, 'per', 'scale', toDateTime('" + hour + "', 'UTC'), 1)")
	from, to := time.Now().Add(-7*24*time.Hour).Unix(), time.Now().Unix()
	n := 0
	for name, d := range dashboards.All() {
		for _, q := range sqlQueries(d) {
			sql, err := dashboards.ExpandMacros(q.sql, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if sql, err = dashboards.ExpandVariables(sql, sampleVars); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", name, q.title)
			run(qualify(sql, db))
			n++
		}
	}
	if n == 0 {
		t.Fatal("no ClickHouse queries found")
	}
	if got := run(qualify("SELECT sum(value) FROM usage_hourly", db)); strings.TrimSpace(got) != "7200" {
		t.Fatalf("usage_hourly in chDB = %q", got)
	}
}
