// Package dashboards builds neonmeter's Grafana dashboards: one for on-call (Prometheus metrics
// of the running service, collection runs from ClickHouse) and one for finance (usage from the
// usage_hourly view in billing units). The JSON files beside this file are generated from it
// (go test ./dashboards/ -update) and tests run every panel query: PromQL through promtool,
// SQL on the real ClickHouse.
package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Datasource plugin types, as Grafana names them.
const (
	TypePrometheus = "prometheus"
	TypeClickHouse = "grafana-clickhouse-datasource"
)

// Dashboard is the subset of Grafana's dashboard JSON model neonmeter uses.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Tags          []string   `json:"tags"`
	Timezone      string     `json:"timezone"`
	SchemaVersion int        `json:"schemaVersion"`
	Refresh       string     `json:"refresh"`
	Time          TimeRange  `json:"time"`
	Templating    Templating `json:"templating"`
	Panels        []Panel    `json:"panels"`
}

type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a datasource variable, so a dashboard imports into any Grafana, or a query
// variable (Type "query") whose values a ClickHouse query lists.
type Variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label"`
	Type       string      `json:"type"`
	Query      string      `json:"query"`
	Datasource *Datasource `json:"datasource,omitempty"`
	// Refresh 1 reloads the values when the dashboard loads.
	Refresh int `json:"refresh,omitempty"`
}

type Panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	GridPos     GridPos    `json:"gridPos"`
	Datasource  Datasource `json:"datasource"`
	Targets     []Target   `json:"targets"`
	FieldConfig FieldCfg   `json:"fieldConfig"`
}

type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type FieldCfg struct {
	Defaults FieldDefaults `json:"defaults"`
}

type FieldDefaults struct {
	Unit string `json:"unit,omitempty"`
}

// Target is a panel query: Expr for Prometheus, RawSQL (with Format and QueryType) for the
// ClickHouse plugin.
type Target struct {
	RefID        string     `json:"refId"`
	Datasource   Datasource `json:"datasource"`
	Expr         string     `json:"expr,omitempty"`
	LegendFormat string     `json:"legendFormat,omitempty"`
	EditorType   string     `json:"editorType,omitempty"`
	RawSQL       string     `json:"rawSql,omitempty"`
	Format       *int       `json:"format,omitempty"`
	QueryType    string     `json:"queryType,omitempty"`
}

var (
	prometheusDS = Datasource{Type: TypePrometheus, UID: "${DS_PROMETHEUS}"}
	clickhouseDS = Datasource{Type: TypeClickHouse, UID: "${DS_CLICKHOUSE}"}
)

// The ClickHouse plugin's format numbers.
var (
	formatTimeSeries = 0
	formatTable      = 1
)

// builder lays panels out in rows of two.
type builder struct {
	d Dashboard
}

func newDashboard(uid, title, description string, sources ...Variable) *builder {
	return &builder{d: Dashboard{
		UID: uid, Title: title, Description: description, Tags: []string{"neonmeter"},
		Timezone: "utc", SchemaVersion: 39, Refresh: "5m", Time: TimeRange{From: "now-7d", To: "now"},
		Templating: Templating{List: sources},
	}}
}

var (
	promVar = Variable{Name: "DS_PROMETHEUS", Label: "Prometheus", Type: "datasource", Query: TypePrometheus}
	chVar   = Variable{Name: "DS_CLICKHOUSE", Label: "ClickHouse", Type: "datasource", Query: TypeClickHouse}
)

func (b *builder) add(p Panel) {
	n := len(b.d.Panels)
	p.ID = n + 1
	w := 12
	if p.Type == "table" {
		w = 24
	}
	y := 0
	x := 0
	if n > 0 {
		last := b.d.Panels[n-1].GridPos
		x, y = last.X+last.W, last.Y
		if x+w > 24 {
			x, y = 0, last.Y+last.H
		}
	}
	p.GridPos = GridPos{H: 8, W: w, X: x, Y: y}
	for i := range p.Targets {
		p.Targets[i].RefID = string(rune('A' + i))
		p.Targets[i].Datasource = p.Datasource
	}
	b.d.Panels = append(b.d.Panels, p)
}

// prom adds a Prometheus time series panel with one query per expression.
func (b *builder) prom(title, unit, description string, exprs ...[2]string) {
	p := Panel{Type: "timeseries", Title: title, Description: description, Datasource: prometheusDS,
		FieldConfig: FieldCfg{Defaults: FieldDefaults{Unit: unit}}}
	for _, e := range exprs {
		p.Targets = append(p.Targets, Target{Expr: e[0], LegendFormat: e[1]})
	}
	b.add(p)
}

// sql adds a ClickHouse panel: a time series (the query returns a time column) or a table.
func (b *builder) sql(kind, title, unit, description, query string) {
	format, queryType := &formatTimeSeries, "timeseries"
	if kind == "table" {
		format, queryType = &formatTable, "table"
	}
	b.add(Panel{Type: kind, Title: title, Description: description, Datasource: clickhouseDS,
		FieldConfig: FieldCfg{Defaults: FieldDefaults{Unit: unit}},
		Targets:     []Target{{EditorType: "sql", RawSQL: query, Format: format, QueryType: queryType}}})
}

// OnCall is the on-call dashboard: is collection fresh and healthy, is Neon answering.
func OnCall() Dashboard {
	b := newDashboard("neonmeter-oncall", "neonmeter — on-call",
		"Collection freshness and outcomes, Neon API health, serve's steps. Alerts: deploy/prometheus.", promVar, chVar)
	b.prom("Freshness by tier", "s", "Per org and scheduler tier, now minus the newest hour complete for every project of the tier. Active, at-risk and closing page past 3 h; rolling must stay well inside Neon's 168 h of hourly data (pages past 120 h).",
		[2]string{`max by (org_id, tier) (neonmeter_collector_tier_freshness_seconds)`, "{{org_id}} {{tier}}"})
	b.prom("Consumption budget", "short", "Calls budgeted cycles sent on Neon's consumption routes per hour (retries included), against one cycle's budget; projects per tier at the last cycle.",
		[2]string{`sum(increase(neonmeter_collector_cycle_calls_total[1h]))`, "calls per hour"},
		[2]string{`max(neonmeter_collector_cycle_budget_calls)`, "budget per cycle"},
		[2]string{`sum by (tier) (neonmeter_collector_tier_projects)`, "{{tier}} projects"})
	b.prom("Sweeps by result", "short", "Collection runs per hour (one per org and budgeted cycle, and explicit sweeps), and budgeted cycles.",
		[2]string{`sum by (endpoint, result) (increase(neonmeter_collect_runs_total[1h]))`, "{{endpoint}} {{result}}"},
		[2]string{`sum by (result) (increase(neonmeter_collector_cycles_total[1h]))`, "cycles {{result}}"})
	b.prom("Data freshness (watermark)", "s", "Now minus the oldest hour complete for every project of any org (the rolling sweep's oldest). Neon keeps hourly data for 168 h.",
		[2]string{`max(neonmeter_collect_data_freshness_seconds)`, "watermark age"})
	b.prom("Sweep duration (p90)", "s", "",
		[2]string{`histogram_quantile(0.9, sum by (le) (rate(neonmeter_collect_duration_seconds_bucket[6h])))`, "p90"})
	b.prom("Rows written and revisions", "short", "Rows written scale with change; revisions are values Neon changed after we stored them.",
		[2]string{`sum(increase(neonmeter_collect_rows_written_total[1h]))`, "rows written"},
		[2]string{`sum(increase(neonmeter_collect_revisions_total[1h]))`, "revisions"})
	b.prom("Neon API responses", "reqps", "By route and status code.",
		[2]string{`sum by (route, code) (rate(neonmeter_neon_api_requests_total[5m]))`, "{{route}} {{code}}"})
	b.prom("Neon API retries", "reqps", "",
		[2]string{`sum by (reason) (rate(neonmeter_neon_api_retries_total[5m]))`, "{{reason}}"})
	b.prom("Client-side throttling", "s", "Seconds per second spent waiting for the client's token buckets.",
		[2]string{`sum by (bucket) (rate(neonmeter_neon_api_throttle_wait_seconds_total[5m]))`, "{{bucket}}"})
	b.prom("Requests that could wake a compute", "short", "Must stay 0 for collection.",
		[2]string{`sum by (route) (increase(neonmeter_neon_api_wake_risk_requests_total[1d]))`, "{{route}}"})
	b.prom("Serve step failures", "short", "Accounts sync, retention and later stages of serve's cycle.",
		[2]string{`sum by (step) (increase(neonmeter_serve_steps_total{result="failure"}[1h]))`, "{{step}}"})
	b.prom("Accounts sync", "short", "Changes recorded from Stripe, and problems found in Stripe's data.",
		[2]string{`sum(increase(neonmeter_accounts_changes_recorded_total[1h]))`, "changes"},
		[2]string{`max(neonmeter_accounts_sync_problems)`, "problems"})
	b.prom("Stripe pushes", "short", "Requests sending a value to Stripe, by sink and outcome (pushed, duplicate, retried, rekeyed, late, failed, abandoned).",
		[2]string{`sum by (sink, outcome) (increase(neonmeter_billing_pushes_total[1h]))`, "{{sink}} {{outcome}}"})
	b.prom("Billing backlog", "s", "Age of the oldest hour not yet confirmed by Stripe; values waiting; values held until every project of their customer is collected for the hour.",
		[2]string{`max(neonmeter_billing_oldest_unpushed_hour_age_seconds)`, "oldest unpushed hour"},
		[2]string{`max(neonmeter_billing_pending_values)`, "pending values"},
		[2]string{`max(neonmeter_billing_incomplete_values)`, "held incomplete"})
	b.prom("Billing drift and late adjustments", "short", "Drift at the last reconcile (units); revisions Stripe could no longer take.",
		[2]string{`max by (sink) (neonmeter_billing_drift_units)`, "drift {{sink}}"},
		[2]string{`sum by (sink, reason) (increase(neonmeter_billing_late_adjustments_total[1d]))`, "late {{sink}} {{reason}}"})
	b.prom("Projects by enforcement state", "short", "After the last enforcement cycle.",
		[2]string{`sum by (level, status) (neonmeter_enforcement_projects)`, "{{level}} {{status}}"})
	b.prom("Enforcement actions", "short", "Neon mutations by kind and outcome; breaker state.",
		[2]string{`sum by (kind, outcome) (increase(neonmeter_enforcement_actions_total[1h]))`, "{{kind}} {{outcome}}"},
		[2]string{`max(neonmeter_enforcement_breaker_tripped)`, "breaker tripped"})
	b.sql("table", "Recent collection runs", "", "From collection_runs; a run whose process died shows as abandoned once a later sweep records it.",
		`SELECT started_at, org_id, endpoint, granularity, outcome, pages, values_fetched, rows_written, revisions, retries, duration_seconds, error
FROM collection_runs FINAL
WHERE $__timeFilter(started_at)
ORDER BY started_at DESC
LIMIT 50`)
	return b.d
}

// Finance is the finance dashboard: usage in billing units from usage_hourly.
func Finance() Dashboard {
	b := newDashboard("neonmeter-finance", "neonmeter — finance",
		"Usage from the usage_hourly view (one latest row per project, metric and hour) in billing units: CU-hours, GB-months (744 h), GB.", chVar)
	b.sql("timeseries", "Compute (CU-hours per day)", "short", "compute_unit_seconds ÷ 3600 (v2); legacy orgs: compute_time_seconds.",
		`SELECT toStartOfDay(hour) AS time, sumIf(value, metric = 'compute_unit_seconds') / 3600 AS v2, sumIf(value, metric = 'compute_time_seconds') / 3600 AS legacy
FROM usage_hourly
WHERE $__timeFilter(hour)
GROUP BY time
ORDER BY time`)
	b.sql("timeseries", "Storage (GB-months per day)", "short", "Byte-hours ÷ 744 ÷ 1e9, summed, never averaged.",
		`SELECT toStartOfDay(hour) AS time, metric, sum(value) / 744 / 1000000000 AS gb_months
FROM usage_hourly
WHERE $__timeFilter(hour) AND metric IN ('root_branch_bytes_month', 'child_branch_bytes_month', 'instant_restore_bytes_month', 'snapshot_storage_bytes_month')
GROUP BY time, metric
ORDER BY time`)
	b.sql("timeseries", "Data transfer (GB per day)", "short", "",
		`SELECT toStartOfDay(hour) AS time, metric, sum(value) / 1000000000 AS gb
FROM usage_hourly
WHERE $__timeFilter(hour) AND metric IN ('public_network_transfer_bytes', 'private_network_transfer_bytes')
GROUP BY time, metric
ORDER BY time`)
	b.sql("timeseries", "Revisions per day", "short", "Stored values Neon changed later; each was replaced, never added.",
		`SELECT toStartOfDay(hour) AS time, count() AS revisions
FROM usage_revisions FINAL
WHERE $__timeFilter(hour)
GROUP BY time
ORDER BY time`)
	b.sql("table", "Top 20 projects by compute", "", "CU-hours in the selected range.",
		`SELECT org_id, project_id, any(period_plan) AS neon_plan, sum(value) / 3600 AS cu_hours
FROM usage_hourly
WHERE $__timeFilter(hour) AND metric = 'compute_unit_seconds'
GROUP BY org_id, project_id
ORDER BY cu_hours DESC
LIMIT 20`)
	b.sql("timeseries", "Pushed to Stripe per day", "short", "Values Stripe confirmed, in billing units, by sink (latest ledger row per customer, target and hour).",
		`SELECT toStartOfDay(hour) AS time, toString(sink) AS sink, sum(confirmed_value) AS units
FROM billing_ledger FINAL
WHERE $__timeFilter(hour) AND status = 'pushed'
GROUP BY time, sink
ORDER BY time`)
	b.sql("table", "Late adjustments", "", "Revisions Stripe could no longer take: issue a credit or a charge (docs/billing.md).",
		`SELECT detected_at, customer_id, target, toString(sink) AS sink, toString(reason) AS reason, period_start, period_end, old_value, new_value, amount
FROM billing_late_adjustments FINAL
WHERE $__timeFilter(hour)
ORDER BY detected_at DESC
LIMIT 100`)
	b.sql("table", "Usage by Neon plan", "", "Per metric, in raw units (see docs/data-model.md).",
		`SELECT period_plan, metric, uniqExact(project_id) AS projects, sum(value) AS total
FROM usage_hourly
WHERE $__timeFilter(hour)
GROUP BY period_plan, metric
ORDER BY period_plan, metric`)
	financeMargin(b)
	return b.d
}

// All returns every dashboard by file name.
func All() map[string]Dashboard {
	return map[string]Dashboard{"oncall.json": OnCall(), "finance.json": Finance(), "customer.json": Customer()}
}

// Marshal renders a dashboard as indented JSON with a trailing newline.
func Marshal(d Dashboard) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

var variableRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Variables returns the names of the dashboard variables a query references (${name} or
// $name; the plugin's $__ macros excluded), in order of appearance, each once.
func Variables(query string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range variableRef.FindAllStringSubmatch(query, -1) {
		name := m[1] + m[2]
		if strings.HasPrefix(name, "__") || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	return out
}

// ExpandVariables replaces ${name} and $name by vars[name], as Grafana does for a single value;
// a reference to a name vars lacks is an error.
func ExpandVariables(query string, vars map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(query, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if strings.HasPrefix(name, "__") {
			return ref
		}
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for variable(s) %v in %q", missing, query)
	}
	return out, nil
}

var timeFilter = regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`)

// ExpandMacros replaces the ClickHouse plugin's macros the dashboards use with what the plugin
// sends for a time range given in Unix seconds, so tests can run the exact panel SQL.
func ExpandMacros(sql string, from, to int64) (string, error) {
	out := timeFilter.ReplaceAllString(sql, fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", from, to))
	if strings.Contains(out, "$__") {
		return "", fmt.Errorf("unexpanded macro in %q", out)
	}
	return out, nil
}
