package accounts

import "github.com/prometheus/client_golang/prometheus"

// Values of the result label of neonmeter_accounts_sync_runs_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// Metrics of account syncs and imports. Per-project numbers stay in ClickHouse: no label
// carries a project or customer.
type Metrics struct {
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	changes     *prometheus.CounterVec
	retries     *prometheus.CounterVec
	problems    prometheus.Gauge
	projects    *prometheus.GaugeVec
}

// NewMetrics registers the metrics on reg; a nil reg registers nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neonmeter_accounts_sync_runs_total",
			Help: "Account syncs from Stripe, by result (success or failure)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "neonmeter_accounts_sync_duration_seconds",
			Help:    "Wall time of one account sync from Stripe, in seconds.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "neonmeter_accounts_sync_last_success_timestamp_seconds",
			Help: "Unix time of the last successful account sync."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neonmeter_accounts_changes_recorded_total",
			Help: "Account changes written to account_history, by source (stripe or csv)."}, []string{"source"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "neonmeter_accounts_stripe_retries_total",
			Help: "Stripe list pages fetched again after a retryable error, by object listed."}, []string{"object"}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "neonmeter_accounts_sync_problems",
			Help: "Problems in Stripe's data found by the last sync (contradictory or unusable values)."}),
		projects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "neonmeter_accounts_projects",
			Help: "Projects with usage in the last 7 days after the last sync, by state (mapped or unmapped)."}, []string{"state"}),
	}
	for _, r := range []string{resultSuccess, resultFailure} {
		m.runs.WithLabelValues(r)
	}
	for _, s := range []Source{SourceStripe, SourceCSV} {
		m.changes.WithLabelValues(string(s))
	}
	for _, o := range []string{"customers", "subscriptions", "subscription_items", "products"} {
		m.retries.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.lastSuccess, m.changes, m.retries, m.problems, m.projects} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
