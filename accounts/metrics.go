package accounts

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric"
)

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
	b := metric.New(reg, "accounts metrics")
	m := &Metrics{
		runs: b.CounterVec("neonmeter_accounts_sync_runs_total",
			"Account syncs from Stripe, by result (success or failure).", "result"),
		duration: b.Histogram("neonmeter_accounts_sync_duration_seconds",
			"Wall time of one account sync from Stripe, in seconds.", []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}),
		lastSuccess: b.Gauge("neonmeter_accounts_sync_last_success_timestamp_seconds",
			"Unix time of the last successful account sync."),
		changes: b.CounterVec("neonmeter_accounts_changes_recorded_total",
			"Account changes written to account_history, by source (stripe or csv).", "source"),
		retries: b.CounterVec("neonmeter_accounts_stripe_retries_total",
			"Stripe list pages fetched again after a retryable error, by object listed.", "object"),
		problems: b.Gauge("neonmeter_accounts_sync_problems",
			"Problems in Stripe's data found by the last sync (contradictory or unusable values)."),
		projects: b.GaugeVec("neonmeter_accounts_projects",
			"Projects with usage in the last 7 days after the last sync, by state (mapped or unmapped).", "state"),
	}
	if err := b.Err(); err != nil {
		return nil, err
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
	return m, nil
}
