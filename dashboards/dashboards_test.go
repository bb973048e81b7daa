package dashboards_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/dashboards"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/finance"
	financestore "github.com/neonmeter/neonmeter/finance/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

var update = flag.Bool("update", false, "rewrite the dashboard JSON files")

// TestDashboards_Generated keeps the committed JSON equal to what the package builds.
func TestDashboards_Generated(t *testing.T) {
	for name, d := range dashboards.All() {
		got, err := dashboards.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(name, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (run go test ./dashboards/ -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./dashboards/ -update and review the diff", name)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || len(p.Targets) == 0 || p.Title == "" || p.GridPos.W == 0 {
				t.Errorf("%s: panel %d %q is malformed", name, p.ID, p.Title)
			}
			ids[p.ID] = true
			for _, tg := range p.Targets {
				if tg.Datasource != p.Datasource || tg.RefID == "" || (tg.Expr == "") == (tg.RawSQL == "") {
					t.Errorf("%s: panel %q has a malformed target %+v", name, p.Title, tg)
				}
			}
		}
	}
}

// recorder is a Registerer that keeps the names of every series registered on it.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([a-z_:]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

// knownMetrics are the series neonmeter exports: those its packages register, and those of
// serve's own golden list.
func knownMetrics(t *testing.T) map[string]bool {
	r := &recorder{names: map[string]bool{}}
	if _, err := collector.NewMetrics(r, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.NewMetrics(r); err != nil {
		t.Fatal(err)
	}
	if _, err := neon.NewClient(neon.Config{BaseURL: "http://127.0.0.1:1/api/v2", APIKey: "k", Registerer: r}); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.NewMetrics(r); err != nil {
		t.Fatal(err)
	}
	if _, err := enforcement.NewMetrics(r); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("..", "cmd", "neonmeter", "testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		r.names[strings.Fields(line)[0]] = true
	}
	return r.names
}

var metricName = regexp.MustCompile(`neonmeter_[a-z_]+`)

// TestDashboards_PromQL checks every Prometheus query with promtool (as recording rules) and
// that every series it reads is one neonmeter exports.
func TestDashboards_PromQL(t *testing.T) {
	known := knownMetrics(t)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboards\n  rules:\n")
	n := 0
	for name, d := range dashboards.All() {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				n++
				fmt.Fprintf(&rules, "  - record: dashboard:query_%d\n    expr: %q\n", n, tg.Expr)
				for _, m := range metricName.FindAllString(tg.Expr, -1) {
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
					if !known[m] && !known[base] {
						t.Errorf("%s: panel %q reads %s, which neonmeter does not export", name, p.Title, m)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus queries found")
	}
	file := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("promtool", "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules (promtool is installed by scripts/deps.sh): %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d rules found", n)) {
		t.Fatalf("promtool did not check all %d queries:\n%s", n, out)
	}
}

// TestAlertRules_ReadExportedSeries keeps the alert rules in step with the metric names: a
// renamed series would leave its alert silent forever.
func TestAlertRules_ReadExportedSeries(t *testing.T) {
	known := knownMetrics(t)
	rules, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "neonmeter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(rules), "\n") {
		if !strings.Contains(line, "expr:") {
			continue
		}
		for _, m := range metricName.FindAllString(line, -1) {
			n++
			if !known[m] {
				t.Errorf("alert rule reads %s, which neonmeter does not export: %s", m, strings.TrimSpace(line))
			}
		}
	}
	if n == 0 {
		t.Fatal("no series found in the alert rules")
	}
}

// seed fills a migrated database with a little of everything the panels read: usage of p-1
// owned by cus_1 on pro, a ledger row, a late adjustment, a reconcile run with drift, an
// enforcement audit row and a cost table under which cus_1 costs more than it pays.
func seed(t *testing.T) (driver.Conn, string) {
	conn, db := chtest.New(t)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Hour)
	var facts []collector.Fact
	for _, m := range append(neon.V2Metrics(), neon.LegacyMetrics()...) {
		for h := 0; h < 24; h++ {
			facts = append(facts, collector.Fact{OrgID: "org-a", ProjectID: "p-1", Metric: m, Hour: t0.Add(time.Duration(h) * time.Hour),
				Value: uint64(1000 + h), PeriodID: "per", PeriodPlan: "scale", CollectedAt: t0, Version: 1})
		}
	}
	testworld.Seed(t, conn, db, testworld.Rows{
		Facts: facts,
		Revisions: []collector.Revision{{OrgID: "org-a", ProjectID: "p-1", Metric: "compute_unit_seconds",
			Hour: t0, OldValue: 1, NewValue: 1000, OldVersion: 0, NewVersion: 1, DetectedAt: t0, RunID: "r"}},
		Runs: []collector.Run{{RunID: "r", OrgID: "org-a", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
			WindowFrom: t0, WindowTo: t0.Add(24 * time.Hour), StartedAt: t0.Add(time.Hour), Outcome: collector.OutcomeRunning}},
		Accounts: []accounts.Record{{ProjectID: "p-1", ValidFrom: t0.Add(-time.Hour), CustomerID: "cus_1",
			Plan: "pro", Source: accounts.SourceCSV, RecordedAt: t0, RunID: "r", Version: 1}},
		Ledger: []billing.LedgerRow{{CustomerID: "cus_1", Target: "neon_compute", Hour: t0, Sink: billing.SinkMeter,
			Metric: "compute_unit_seconds", Value: 5, ConfirmedValue: 5, Revision: 1, Identifier: "id-1", Status: billing.LedgerPushed,
			HTTPStatus: 200, RecordedAt: t0, RunID: "r", Version: 3}},
		Late: []billing.LateAdjustment{{CustomerID: "cus_1", Target: "neon_compute", Hour: t0,
			Sink: billing.SinkMeter, Revision: 2, Metric: "compute_unit_seconds", PeriodStart: t0.AddDate(0, -1, 0), PeriodEnd: t0,
			OldValue: 5, NewValue: 7, Amount: 2, Reason: billing.LateFinalized, DetectedAt: t0, RunID: "r"}},
		Reconciles: []billing.ReconcileRun{{RunID: "rec", Trigger: billing.TriggerSchedule, StartedAt: t0.Add(25 * time.Hour),
			FinishedAt: t0.Add(25 * time.Hour), From: t0, To: t0.Add(24 * time.Hour), Compared: 1, Drifting: 1, DriftUnits: 1}},
		Drift: []billing.Drift{{CheckedAt: t0.Add(25 * time.Hour), RunID: "rec", CustomerID: "cus_1", Target: "neon_compute",
			Sink: billing.SinkMeter, Bucket: t0, Expected: 5, Actual: 4, Drift: -1}},
		Audit: []enforcement.AuditRecord{{At: t0.Add(2 * time.Hour), CycleID: "c", ProjectID: "p-1",
			Plan: "pro", Metric: "compute_unit_seconds", Usage: 9, Limit: 10, Level: enforcement.LevelWarning, Action: "decision", Reason: "over 80 %",
			Mode: enforcement.ModeDryRun, Outcome: enforcement.OutcomePlanned}},
	})
	seedCosts(t, conn, db, t0)
	return conn, db
}

func seedCosts(t *testing.T, conn driver.Conn, db string, t0 time.Time) {
	cat, err := plans.Load(filepath.Join("..", "plans", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	costs, err := finance.ParseCosts("costs.yaml", []byte("version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: 100}\nplans:\n  pro: {neon_compute: 0.01}\n"), cat)
	if err != nil {
		t.Fatal(err)
	}
	if err := financestore.New(conn, db).LoadCosts(context.Background(), costs, "free", t0); err != nil {
		t.Fatal(err)
	}
}

// sampleVars are the variable values the panel checks use: the seeded customer.
var sampleVars = map[string]string{"customer": "cus_1"}

// panelSQL returns a target's SQL as the plugin sends it for the last 7 days and sampleVars.
func panelSQL(t *testing.T, sql string) string {
	from, to := time.Now().Add(-7*24*time.Hour).Unix(), time.Now().Unix()
	out, err := dashboards.ExpandMacros(sql, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = dashboards.ExpandVariables(out, sampleVars); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDashboards_SQLOnClickHouse runs every ClickHouse panel and variable query, macros and
// variables expanded as the plugin does, on a migrated database holding a little of
// everything, and expects rows from each.
func TestDashboards_SQLOnClickHouse(t *testing.T) {
	conn, db := seed(t)
	ctx := context.Background()
	queries := 0
	for name, d := range dashboards.All() {
		for _, q := range sqlQueries(d) {
			queries++
			rows, err := conn.Query(ctx, qualify(panelSQL(t, q.sql), db))
			if err != nil {
				t.Errorf("%s: %s: %v", name, q.title, err)
				continue
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n == 0 {
				t.Errorf("%s: %s returned no rows from data that should show", name, q.title)
			}
		}
	}
	if queries == 0 {
		t.Fatal("no ClickHouse queries found")
	}
}

type sqlQuery struct {
	title, kind, sql string
}

// sqlQueries lists a dashboard's ClickHouse queries: its query variables' and its panels'.
func sqlQueries(d dashboards.Dashboard) []sqlQuery {
	var out []sqlQuery
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out = append(out, sqlQuery{"variable " + v.Name, "variable", v.Query})
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL != "" {
				out = append(out, sqlQuery{"panel " + strconv.Quote(p.Title), p.Type, tg.RawSQL})
			}
		}
	}
	return out
}

var fromTable = regexp.MustCompile(`\bFROM ([a-z_]+)\b`)

// qualify points the panel's tables at database db, as Grafana's datasource default database
// does.
func qualify(sql, db string) string {
	return fromTable.ReplaceAllString(sql, "FROM "+db+".$1")
}

func TestExpandMacros(t *testing.T) {
	got, err := dashboards.ExpandMacros("SELECT 1 FROM t WHERE $__timeFilter(hour) AND x = 1", 10, 20)
	if err != nil || got != "SELECT 1 FROM t WHERE hour >= toDateTime(10) AND hour <= toDateTime(20) AND x = 1" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := dashboards.ExpandMacros("SELECT $__interval_s", 1, 2); err == nil {
		t.Fatal("an unknown macro must be refused")
	}
	names := make([]string, 0)
	for n := range dashboards.All() {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "customer.json,finance.json,oncall.json" {
		t.Fatalf("dashboards: %v", names)
	}
}
