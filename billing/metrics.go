package billing

import (
	"context"
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
	MetricUnsendable      = "neonmeter_billing_unsendable_values"
	MetricIncomplete      = "neonmeter_billing_incomplete_values"
	MetricReconcileRuns   = "neonmeter_billing_reconcile_runs_total"
	MetricReconcileLast   = "neonmeter_billing_reconcile_last_success_timestamp_seconds"
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
	// OutcomeUnsendable: no subscription item on the legacy price; the value is held.
	OutcomeUnsendable Outcome = "unsendable"
)

// Values of the push-runs result label, the same as every other stage's.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultStopped = "stopped" // its context was cancelled: a shutdown, not a failure
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
	Unsendable      *prometheus.GaugeVec
	Incomplete      prometheus.Gauge
	ReconcileRuns   *prometheus.CounterVec
	ReconcileLast   prometheus.Gauge
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
		Incomplete: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricIncomplete,
			Help: "Values the last push cycle held back because not every project of the customer is collected for the hour yet (the budgeted collector's rolling sweep reaches them)."}),
		LateAdjustments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLateAdjustments,
			Help: "Revisions Stripe can no longer take, recorded in billing_late_adjustments, by sink and reason (finalized, too_old)."}, []string{"sink", "reason"}),
		LateUnits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLateUnits,
			Help: "Absolute billing units of late adjustments, by sink and reason."}, []string{"sink", "reason"}),
		DriftValues: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDriftValues,
			Help: "Buckets (hours for meters, periods for usage records) whose Stripe value differed from ClickHouse at the last reconcile, by sink and target (meter event name or legacy price id)."}, []string{"sink", "target"}),
		DriftUnits: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDriftUnits,
			Help: "Sum of absolute differences in billing units between Stripe and ClickHouse at the last reconcile, by sink and target."}, []string{"sink", "target"}),
		Unsendable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricUnsendable,
			Help: "Values held after the last push cycle because Stripe has nowhere to put them (no subscription item on the legacy price), by sink."}, []string{"sink"}),
		ReconcileRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReconcileRuns,
			Help: "Reconciliations by trigger (schedule, grace, cli) and result (success, failure)."}, []string{"trigger", "result"}),
		ReconcileLast: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricReconcileLast,
			Help: "Unix time at which the last recorded reconciliation that finished started (from billing_reconcile_runs)."}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRuns,
			Help: "Push cycles by result (success, failure, stopped by a shutdown)."}, []string{"result"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricDuration,
			Help: "Duration of push cycles in seconds.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time of the last push cycle that finished without error."}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.Pushes, m.Pending, m.OldestUnpushed, m.LateAdjustments, m.LateUnits,
		m.DriftValues, m.DriftUnits, m.Unsendable, m.Incomplete, m.ReconcileRuns, m.ReconcileLast, m.Runs, m.Duration, m.LastSuccess} {
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
		m.LateUnits.WithLabelValues(string(a.Sink), string(a.Reason)).Add(absFloat(a.Amount))
	}
}

// observeRun counts a finished push cycle that started at start.
func (p *Pusher) observeRun(start time.Time, err error) {
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	result := ResultSuccess
	switch {
	case errors.Is(err, context.Canceled):
		result = ResultStopped
	case err != nil:
		result = ResultFailure
	default:
		m.LastSuccess.SetToCurrentTime()
	}
	m.Runs.WithLabelValues(result).Inc()
	m.Duration.Observe(time.Since(start).Seconds())
}

// setDrift sets the drift gauges from one reconciliation: every target of the catalog gets a
// series (0 without drift), so an alert sees a drift appear and resolve; targets the catalog no
// longer names are dropped.
func (m *Metrics) setDrift(targets []TargetDrift, drift []TargetDrift, started time.Time) {
	if m == nil {
		return
	}
	m.DriftValues.Reset()
	m.DriftUnits.Reset()
	for _, t := range append(targets, drift...) {
		m.DriftValues.WithLabelValues(string(t.Sink), t.Target).Set(float64(t.Values))
		m.DriftUnits.WithLabelValues(string(t.Sink), t.Target).Set(t.Units)
	}
	m.ReconcileLast.Set(float64(started.Unix()))
}

// countReconcile counts one reconciliation; m may be nil.
func (m *Metrics) countReconcile(trigger ReconcileTrigger, err error) {
	if m == nil {
		return
	}
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	}
	m.ReconcileRuns.WithLabelValues(string(trigger), result).Inc()
}
