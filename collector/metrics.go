package collector

import (
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
		watermark: map[string]time.Time{},
		now:       now,
	}
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

func (m *Metrics) observe(s Summary, now time.Time) {
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
	if !s.Watermark.IsZero() {
		m.SetWatermark(s.Endpoint, s.Watermark)
	}
}

// abandoned counts runs a dead process left running, once each, when a sweep records them.
func (m *Metrics) abandoned(ep Endpoint, n int) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(string(ep), "abandoned").Add(float64(n))
}
