package collector

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric"
)

// Metrics are the collector's Prometheus series. Labels come from closed sets (endpoint,
// result); per-project numbers live in ClickHouse, never in labels.
type Metrics struct {
	runs          *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	lastSuccess   *prometheus.GaugeVec
	valuesFetched *prometheus.CounterVec
	rowsWritten   *prometheus.CounterVec
	revisions     *prometheus.CounterVec

	// Budgeted cycles (Fleet).
	cycles        *prometheus.CounterVec
	cycleCalls    prometheus.Counter
	cycleBudget   prometheus.Gauge
	tierProjects  *prometheus.GaugeVec
	tierFreshness *tierAges

	mu        sync.Mutex
	watermark map[string]time.Time
	now       func() time.Time
}

// NewMetrics registers the collector's series on reg. now is the clock used for freshness.
func NewMetrics(reg prometheus.Registerer, now func() time.Time) (*Metrics, error) {
	if now == nil {
		now = time.Now
	}
	b := metric.New(reg, "collector metrics")
	m := &Metrics{
		runs: b.CounterVec("neonmeter_collect_runs_total",
			"Collection runs by consumption endpoint and result: success, failure, stopped (by a shutdown) or abandoned (its process died; counted when a later sweep records it).",
			"endpoint", "result"),
		duration: b.HistogramVec("neonmeter_collect_duration_seconds", "Wall time of collection sweeps in seconds.",
			[]float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600}, "endpoint"),
		lastSuccess:   b.GaugeVec("neonmeter_collect_last_success_timestamp_seconds", "Unix time of the last successful sweep.", "endpoint"),
		valuesFetched: b.CounterVec("neonmeter_collect_values_fetched_total", "Metric values read from Neon.", "endpoint"),
		rowsWritten: b.CounterVec("neonmeter_collect_rows_written_total",
			"Usage rows written to ClickHouse (new or changed values only).", "endpoint"),
		revisions: b.CounterVec("neonmeter_collect_revisions_total", "Stored values that Neon revised.", "endpoint"),
		cycles: b.CounterVec("neonmeter_collector_cycles_total",
			"Budgeted collection cycles by result: success, failure (an org or a step failed) or stopped (by a shutdown).", "result"),
		cycleCalls: b.Counter("neonmeter_collector_cycle_calls_total",
			"HTTP attempts budgeted cycles sent on Neon's consumption routes, retries included; never above the budget per cycle."),
		cycleBudget: b.Gauge("neonmeter_collector_cycle_budget_calls",
			"Consumption calls one budgeted cycle may send (NEONMETER_NEON_CONSUMPTION_RATE × the cycle interval)."),
		tierProjects: b.GaugeVec("neonmeter_collector_tier_projects",
			"Projects per org and scheduler tier (closing, active, at_risk, rolling) at the last cycle.", "org_id", "tier"),
		tierFreshness: newTierAges(now),
		watermark:     map[string]time.Time{},
		now:           now,
	}
	b.Collector(m.tierFreshness)
	b.GaugeFunc("neonmeter_collect_data_freshness_seconds",
		"Seconds between now and the end of the newest completely collected hour (the watermark); large means stale data.",
		m.freshness)
	if err := b.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// SetWatermark tells the freshness gauge where an endpoint's watermark is, e.g. at start-up.
func (m *Metrics) SetWatermark(endpoint Endpoint, wm time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watermark[string(endpoint)] = wm
}

// freshness reports the stalest endpoint, or 0 before any watermark is known.
func (m *Metrics) freshness() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var worst float64
	for _, wm := range m.watermark {
		if d := m.now().Sub(wm).Seconds(); d > worst {
			worst = d
		}
	}
	return worst
}

// SetOrgWatermark is SetWatermark for one org of a budgeted fleet, whose orgs may share an
// endpoint; the freshness gauge reports the stalest of every org and endpoint set.
func (m *Metrics) SetOrgWatermark(endpoint Endpoint, orgID string, wm time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watermark[string(endpoint)+"/"+orgID] = wm
}

func (m *Metrics) observe(s Summary, now time.Time) {
	m.record(s, now)
	if m != nil && !s.Watermark.IsZero() {
		m.SetWatermark(s.Endpoint, s.Watermark)
	}
}

// observeOrg records an org's run of a budgeted cycle.
func (m *Metrics) observeOrg(s Summary, now time.Time) {
	m.record(s, now)
	if m != nil && !s.Watermark.IsZero() {
		m.SetOrgWatermark(s.Endpoint, s.OrgID, s.Watermark)
	}
}

// observeCycle records a budgeted cycle: its result, calls, budget and every tier's freshness.
func (m *Metrics) observeCycle(s CycleSummary, err error) {
	if m == nil {
		return
	}
	result := "success"
	switch {
	case errors.Is(err, ErrStopped):
		result = "stopped"
	case err != nil:
		result = "failure"
	}
	m.cycles.WithLabelValues(result).Inc()
	m.cycleCalls.Add(float64(s.Calls))
	m.cycleBudget.Set(float64(s.Budget))
	for _, t := range s.Tiers {
		m.tierProjects.WithLabelValues(t.OrgID, t.Tier.String()).Set(float64(t.Projects))
		m.tierFreshness.set(t.OrgID, t.Tier, t.Oldest, s.Started)
	}
}

// tierAges exports each tier's freshness computed at scrape time, so it keeps growing when
// cycles stop: now minus the oldest complete-through among the tier's projects, or, for a tier
// the last cycle found empty, minus the hour that cycle started in.
type tierAges struct {
	desc   *prometheus.Desc
	now    func() time.Time
	mu     sync.Mutex
	oldest map[[2]string]time.Time // (org, tier) → complete through
}

func newTierAges(now func() time.Time) *tierAges {
	return &tierAges{now: now, oldest: map[[2]string]time.Time{}, desc: prometheus.NewDesc("neonmeter_collector_tier_freshness_seconds",
		"Age of the newest hour complete for every project of a scheduler tier (closing, active, at_risk, rolling): now minus the oldest complete-through among the tier's projects at the last cycle; an empty tier counts from the hour of that cycle.",
		[]string{"org_id", "tier"}, nil)}
}

func (t *tierAges) set(org string, tier Tier, oldest, cycle time.Time) {
	if oldest.IsZero() {
		oldest = cycle.UTC().Truncate(time.Hour)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.oldest[[2]string{org, tier.String()}] = oldest
}

func (t *tierAges) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

func (t *tierAges) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, oldest := range t.oldest {
		ch <- prometheus.MustNewConstMetric(t.desc, prometheus.GaugeValue, max(0, now.Sub(oldest).Seconds()), k[0], k[1])
	}
}

func (m *Metrics) record(s Summary, now time.Time) {
	if m == nil {
		return
	}
	ep := string(s.Endpoint)
	result := "failure"
	switch s.Outcome {
	case OutcomeSuccess:
		result = "success"
	case OutcomeStopped:
		result = "stopped"
	}
	m.runs.WithLabelValues(ep, result).Inc()
	m.duration.WithLabelValues(ep).Observe(s.Duration.Seconds())
	m.valuesFetched.WithLabelValues(ep).Add(float64(s.ValuesFetched))
	m.rowsWritten.WithLabelValues(ep).Add(float64(s.RowsWritten))
	m.revisions.WithLabelValues(ep).Add(float64(s.Revisions))
	if s.Outcome == OutcomeSuccess {
		m.lastSuccess.WithLabelValues(ep).Set(float64(now.Unix()))
	}
}

// abandoned counts runs a dead process left running, once each, when a sweep records them.
func (m *Metrics) abandoned(ep Endpoint, n int) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(string(ep), "abandoned").Add(float64(n))
}
