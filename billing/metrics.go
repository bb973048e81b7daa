package billing

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, for alert rules and dashboards.
const (
	MetricPushes          = "neonmeter_billing_pushes_total"
	MetricPending         = "neonmeter_billing_pending_values"
	MetricOldestUnpushed  = "neonmeter_billing_oldest_unpushed_hour_age_seconds"
	MetricLateAdjustments = "neonmeter_billing_late_adjustments_total"
	MetricLateUnits       = "neonmeter_billing_late_adjustment_units_total"
	MetricDriftValues     = "neonmeter_billing_drift_values"
	MetricDriftUnits      = "neonmeter_billing_drift_units"
	MetricRuns            = "neonmeter_billing_push_runs_total"
	MetricDuration        = "neonmeter_billing_push_duration_seconds"
	MetricLastSuccess     = "neonmeter_billing_push_last_success_timestamp_seconds"
)

// Outcome is what became of a request sending a value: the values of the outcome label.
type Outcome string

// Push outcomes.
const (
	OutcomePushed    Outcome = "pushed"    // Stripe confirmed the value
	OutcomeDuplicate Outcome = "duplicate" // Stripe already held the identifier: counted as pushed
	OutcomeRetried   Outcome = "retried"   // refused for now (429/409/503) or lost; sent again
	OutcomeRekeyed   Outcome = "rekeyed"   // a 5xx Stripe stores for the key; sent again as a new revision
	OutcomeLate      Outcome = "late"      // the hour's invoice is final or too old: a late adjustment
	OutcomeFailed    Outcome = "failed"    // refused as it is; left for the next cycle and logged
	OutcomeAbandoned Outcome = "abandoned" // retries exhausted this cycle; the intent stays pending
)

// Values of the push-runs result label, the same as every other stage's.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Metrics are the billing stage's Prometheus metrics. Labels come from closed sets (sink,
// outcome, reason, result); no customer or project is ever a label.
type Metrics struct {
	Pushes          *prometheus.CounterVec
	Pending         prometheus.Gauge
	OldestUnpushed  prometheus.Gauge
	LateAdjustments *prometheus.CounterVec
	LateUnits       *prometheus.CounterVec
	DriftValues     *prometheus.GaugeVec
	DriftUnits      *prometheus.GaugeVec
	Runs            *prometheus.CounterVec
	Duration        prometheus.Histogram
	LastSuccess     prometheus.Gauge
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPushes,
			Help: "Requests sending a value to Stripe, by sink (meter, usage_record) and outcome."}, []string{"sink", "outcome"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPending,
			Help: "Values that differ from what Stripe confirmed after the last push cycle (unsent or unconfirmed)."}),
		OldestUnpushed: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricOldestUnpushed,
			Help: "Age in seconds of the oldest hour whose value Stripe has not confirmed after the last push cycle; 0 when none."}),
		LateAdjustments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLateAdjustments,
			Help: "Revisions Stripe can no longer take, recorded in billing_late_adjustments, by sink and reason (finalized, too_old)."}, []string{"sink", "reason"}),
		LateUnits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLateUnits,
			Help: "Absolute billing units of late adjustments, by sink and reason."}, []string{"sink", "reason"}),
		DriftValues: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDriftValues,
			Help: "Buckets (hours for meters, periods for usage records) whose Stripe value differed from ClickHouse at the last reconcile, by sink."}, []string{"sink"}),
		DriftUnits: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDriftUnits,
			Help: "Sum of absolute differences in billing units between Stripe and ClickHouse at the last reconcile, by sink."}, []string{"sink"}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRuns,
			Help: "Push cycles by result (success, failure)."}, []string{"result"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricDuration,
			Help: "Duration of push cycles in seconds.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time of the last push cycle that finished without error."}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.Pushes, m.Pending, m.OldestUnpushed, m.LateAdjustments, m.LateUnits,
		m.DriftValues, m.DriftUnits, m.Runs, m.Duration, m.LastSuccess} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// countPush counts one request's outcome; m may be nil.
func (m *Metrics) countPush(sink SinkKind, o Outcome) {
	if m != nil {
		m.Pushes.WithLabelValues(string(sink), string(o)).Inc()
	}
}

// countLate counts recorded late adjustments and their units; m may be nil.
func (m *Metrics) countLate(adj []LateAdjustment) {
	if m == nil {
		return
	}
	for _, a := range adj {
		m.LateAdjustments.WithLabelValues(string(a.Sink), string(a.Reason)).Inc()
		m.LateUnits.WithLabelValues(string(a.Sink), string(a.Reason)).Add(float64(abs(a.Amount)))
	}
}

// observeRun counts a finished push cycle that started at start.
func (p *Pusher) observeRun(start time.Time, err error) {
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	} else {
		m.LastSuccess.SetToCurrentTime()
	}
	m.Runs.WithLabelValues(result).Inc()
	m.Duration.Observe(time.Since(start).Seconds())
}

// observeDrift sets the drift gauges of every sink from a reconcile's drifting buckets.
func (m *Metrics) observeDrift(drift []Bucket) {
	if m == nil {
		return
	}
	for _, s := range []SinkKind{SinkMeter, SinkUsageRecord} {
		n, units := 0, int64(0)
		for _, b := range drift {
			if b.Sink == s {
				n++
				units += abs(b.Drift())
			}
		}
		m.DriftValues.WithLabelValues(string(s)).Set(float64(n))
		m.DriftUnits.WithLabelValues(string(s)).Set(float64(units))
	}
}
