package dashboards_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/dashboards"
)

// TestDashboards_VariablesReferenced checks, without Grafana, that every variable a panel or a
// datasource names is declared on its dashboard and every declared query variable is used: a
// renamed variable would leave panels blank.
func TestDashboards_VariablesReferenced(t *testing.T) {
	for name, d := range dashboards.All() {
		declared, used := map[string]string{}, map[string]bool{}
		for _, v := range d.Templating.List {
			declared[v.Name] = v.Type
		}
		refs := func(what, text string) {
			for _, v := range dashboards.Variables(text) {
				used[v] = true
				if _, ok := declared[v]; !ok {
					t.Errorf("%s: %s references ${%s}, which the dashboard does not declare", name, what, v)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Datasource != nil {
				refs("variable "+v.Name, v.Datasource.UID)
			}
			refs("variable "+v.Name, v.Query)
		}
		for _, p := range d.Panels {
			refs("panel "+p.Title, p.Datasource.UID)
			for _, tg := range p.Targets {
				refs("panel "+p.Title, tg.Datasource.UID+" "+tg.Expr+" "+tg.RawSQL)
			}
		}
		for v, typ := range declared {
			if !used[v] {
				t.Errorf("%s: %s variable %s is used by no panel", name, typ, v)
			}
		}
	}
	if got := dashboards.Variables("x = '${customer}' AND $__timeFilter(hour) AND $plan"); strings.Join(got, ",") != "customer,plan" {
		t.Fatalf("Variables = %v", got)
	}
	if _, err := dashboards.ExpandVariables("'${nobody}'", map[string]string{}); err == nil {
		t.Fatal("an unknown variable must be refused")
	}
}

var tableRef = regexp.MustCompile(`\b(?:FROM|JOIN)\s+([a-z_]+)\b`)

// TestDashboards_ColumnsExist checks on ClickHouse 18.16 that every table a panel or variable
// query names exists after the migrations, that every column a query returns has a name
// (Grafana keys fields by them), that a time series returns its time column first as a date or
// time, and that a variable returns exactly one column. Every name inside a query is resolved
// by the server when it runs (TestDashboards_SQLOnClickHouse).
func TestDashboards_ColumnsExist(t *testing.T) {
	conn, db := seed(t)
	ctx := context.Background()
	tables := map[string]bool{}
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables[n] = true
	}
	rows.Close()
	for name, d := range dashboards.All() {
		for _, q := range sqlQueries(d) {
			for _, m := range tableRef.FindAllStringSubmatch(q.sql, -1) {
				if !tables[m[1]] {
					t.Errorf("%s: %s reads table %s, which no migration creates", name, q.title, m[1])
				}
			}
			checkColumns(t, ctx, conn, db, name, q)
		}
	}
}

func checkColumns(t *testing.T, ctx context.Context, conn driver.Conn, db, name string, q sqlQuery) {
	t.Helper()
	rows, err := conn.Query(ctx, qualify(panelSQL(t, q.sql), db))
	if err != nil {
		t.Errorf("%s: %s: %v", name, q.title, err)
		return
	}
	defer rows.Close()
	cols, types := rows.Columns(), rows.ColumnTypes()
	for _, c := range cols {
		if c == "" || strings.ContainsAny(c, "()") {
			t.Errorf("%s: %s returns an unnamed column %q: give it an alias", name, q.title, c)
		}
	}
	switch q.kind {
	case "variable":
		if len(cols) != 1 {
			t.Errorf("%s: %s returns %d columns, want 1", name, q.title, len(cols))
		}
	case "timeseries":
		if len(cols) < 2 || cols[0] != "time" || !strings.HasPrefix(types[0].DatabaseTypeName(), "Date") {
			t.Errorf("%s: %s must return a Date/DateTime column named time first, got %v", name, q.title, cols)
		}
	}
}
