package enforcement

import (
	"maps"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric"
)

// MaxProjectSeries caps the per-project series: only projects over a limit get one, and at most
// this many, the most severe first (Finding.Severity), so a data spike cannot explode cardinality
// and the worst offenders always alert.
const MaxProjectSeries = 100

// Metrics are enforcement's Prometheus series.
type Metrics struct {
	projects    *prometheus.GaugeVec
	actions     *prometheus.CounterVec
	crossings   *prometheus.CounterVec
	breaker     prometheus.Gauge
	breakerTrip prometheus.Counter
	wakeRisk    prometheus.Counter
	deferred    prometheus.Gauge
	held        *prometheus.GaugeVec
	reads       prometheus.Counter
	calls       *prometheus.CounterVec
	cycles      *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	over        *prometheus.GaugeVec
	gone        prometheus.Gauge
	idleOverMax prometheus.Gauge
}

// NewMetrics registers enforcement's series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	b := metric.New(reg, "enforcement metrics")
	m := &Metrics{
		projects: b.GaugeVec("neonmeter_enforcement_projects",
			"Projects by plan, level (ok, warning, over) and status (normal, throttled, suspended, released) after the last cycle.",
			"plan", "level", "status"),
		actions: b.CounterVec("neonmeter_enforcement_actions_total",
			"Neon mutations by kind (update_project, suspend_endpoint, update_endpoint) and outcome (applied, failed, or planned in dry-run; a project the breaker defers has no actions).",
			"kind", "outcome"),
		crossings: b.CounterVec("neonmeter_enforcement_crossings_total",
			"Level changes of projects (edge-triggered: once per crossing), by the level entered.", "level"),
		breaker: b.Gauge("neonmeter_enforcement_breaker_tripped",
			"1 when the last cycle hit the circuit breaker or a trip waits for `neonmeter enforce ack-breaker`, else 0."),
		breakerTrip: b.Counter("neonmeter_enforcement_breaker_trips_total", "Cycles in which the circuit breaker tripped."),
		wakeRisk: b.Counter("neonmeter_enforcement_wake_risk_actions_total",
			"Endpoint patches sent to an idle compute, which Neon wakes to apply them."),
		deferred: b.Gauge("neonmeter_enforcement_endpoints_pending_projects",
			"Projects whose endpoint changes wait for the compute to be active (patching an idle compute would wake it)."),
		held: b.GaugeVec("neonmeter_enforcement_held_projects",
			"Projects whose suspension or throttling was held back in the last cycle, by reason.", "reason"),
		reads: b.Counter("neonmeter_enforcement_project_reads_total",
			"Projects read one by one from Neon: their computes, or GET project where no project list showed them."),
		calls: b.CounterVec("neonmeter_enforcement_neon_calls_total",
			"Neon calls of enforcement cycles by call: list_projects (pages), get_project, list_endpoints, and the mutations update_project, suspend_endpoint, update_endpoint.",
			"call"),
		cycles: b.CounterVec("neonmeter_enforcement_cycles_total", "Enforcement cycles by result (success or failure).", "result"),
		duration: b.Histogram("neonmeter_enforcement_cycle_duration_seconds", "Wall time of enforcement cycles in seconds.",
			[]float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}),
		lastSuccess: b.Gauge("neonmeter_enforcement_last_success_timestamp_seconds", "Unix time of the last successful enforcement cycle."),
		over: b.GaugeVec("neonmeter_enforcement_project_over_limit",
			"1 per project over a limit (at most 100 series, the most over first): the limit's metric, kind and the project's status.",
			"project_id", "plan", "metric", "kind", "status"),
		gone: b.Gauge("neonmeter_enforcement_gone_projects",
			"Projects Neon answered 404 for (deleted but still mapped), skipped by enforcement."),
		idleOverMax: b.Gauge("neonmeter_enforcement_idle_computes_over_max",
			"Idle computes above their plan's max CU, left alone (a patch would wake them) until seen running."),
	}
	if err := b.Err(); err != nil {
		return nil, err
	}
	for _, call := range []string{callListProjects, callGetProject, callListComputes,
		string(ActionUpdateProject), string(ActionSuspendEndpoint), string(ActionUpdateEndpoint)} {
		m.calls.WithLabelValues(call) // every call has a series from the start
	}
	return m, nil
}

// The counters below are no-ops on nil Metrics (metrics are optional).

func (m *Metrics) countRead() {
	if m != nil {
		m.reads.Inc()
	}
}

func (m *Metrics) countCall(call string) {
	if m != nil {
		m.calls.WithLabelValues(call).Inc()
	}
}

func (m *Metrics) countCrossing(entered Level) {
	if m != nil {
		m.crossings.WithLabelValues(string(entered)).Inc()
	}
}

func (m *Metrics) countAction(k ActionKind, o Outcome) {
	if m != nil {
		m.actions.WithLabelValues(string(k), string(o)).Inc()
	}
}

func (m *Metrics) countWakeRisk() {
	if m != nil {
		m.wakeRisk.Inc()
	}
}

// observeCycle replaces the per-cycle gauges with the cycle's verdicts.
func (m *Metrics) observeCycle(r *Report) {
	if m == nil {
		return
	}
	m.projects.Reset()
	m.held.Reset()
	m.over.Reset()
	var over []Row
	pending := 0
	// The report lists only projects with something to show; the rest of each plan's fleet is
	// ok and normal.
	quiet := maps.Clone(r.FleetByPlan)
	for _, row := range r.Rows {
		m.projects.WithLabelValues(row.Plan, string(row.Level), string(row.Status)).Inc()
		quiet[row.Plan]--
		if row.Held != "" {
			m.held.WithLabelValues(string(row.Held)).Inc()
		}
		if row.Level == LevelOver && row.Outcome != OutcomeGone {
			over = append(over, row)
		}
		if row.EndpointsPending {
			pending++
		}
	}
	for plan, n := range quiet {
		if n > 0 {
			m.projects.WithLabelValues(plan, string(LevelOK), string(StatusNormal)).Add(float64(n))
		}
	}
	sort.Slice(over, func(i, j int) bool {
		fi := Finding{Kind: over[i].Kind, Usage: over[i].Usage, Limit: over[i].Limit}
		fj := Finding{Kind: over[j].Kind, Usage: over[j].Usage, Limit: over[j].Limit}
		return moreSevere(Verdict{ProjectID: over[i].ProjectID, Worst: fi}, Verdict{ProjectID: over[j].ProjectID, Worst: fj})
	})
	for i, row := range over {
		if i == MaxProjectSeries {
			break
		}
		m.over.WithLabelValues(row.ProjectID, row.Plan, row.Metric, string(row.Kind), string(row.Status)).Set(1)
	}
	m.deferred.Set(float64(pending))
	m.gone.Set(float64(r.Gone))
	m.idleOverMax.Set(float64(r.IdleOverMax))
	m.breaker.Set(0)
	if r.BreakerTripped {
		m.breaker.Set(1)
	}
	if r.BreakerTripped && !r.BreakerLatched {
		m.breakerTrip.Inc() // a latched breaker is one trip, however many cycles it holds
	}
}
