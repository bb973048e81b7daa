package neon

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric"
)

// Stats are cumulative counts since the client was created.
type Stats struct {
	Requests    int64 // HTTP attempts sent, retries included
	Retries     int64 // attempts that were repeated (any reason)
	RateLimited int64 // 429 answers seen
	Throttled   int64 // requests that waited for a client-side token
	WakeRisk    int64 // attempts sent on a route that may wake an idle compute
}

type counters struct {
	requests, retries, rateLimited, throttled, wakeRisk atomic.Int64
}

// Retry reasons: the closed set of values of the reason label.
const (
	reasonStatus429      = "429"
	reasonStatus423      = "423"
	reasonStatus503      = "503"
	reasonStatus5xx      = "5xx"
	reasonNetwork        = "network"
	reasonTimeout        = "timeout"
	reasonBadBody        = "bad_body"
	reasonRepeatedPage   = "repeated_page"
	reasonIncompletePage = "incomplete_page"
)

type metrics struct {
	requests *prometheus.CounterVec   // route, code
	retries  *prometheus.CounterVec   // route, reason
	duration *prometheus.HistogramVec // route
	throttle *prometheus.CounterVec   // bucket
	wakeRisk *prometheus.CounterVec   // route
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// Several clients (e.g. one per org) may share a registry: the later ones reuse the series.
	b := metric.New(reg, "register metrics").Shared()
	m := &metrics{
		requests: b.CounterVec("neonmeter_neon_api_requests_total",
			"HTTP requests sent to the Neon API (every attempt), by route and status code (or network/timeout).", "route", "code"),
		retries: b.CounterVec("neonmeter_neon_api_retries_total",
			"Neon API requests repeated after a retryable failure, by route and reason.", "route", "reason"),
		duration: b.HistogramVec("neonmeter_neon_api_request_duration_seconds",
			"Duration of one Neon API attempt in seconds, body read included, by route.",
			[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}, "route"),
		throttle: b.CounterVec("neonmeter_neon_api_throttle_wait_seconds_total",
			"Seconds spent waiting for the client-side rate limiter, by token bucket.", "bucket"),
		wakeRisk: b.CounterVec("neonmeter_neon_api_wake_risk_requests_total",
			"Requests sent on routes that can wake an idle compute (and cost compute), by route.", "route"),
	}
	if err := b.Err(); err != nil {
		return nil, err
	}
	// Series that dashboards and alerts read exist from the start, at zero.
	m.throttle.WithLabelValues(bucketConsumption)
	m.throttle.WithLabelValues(bucketGeneral)
	m.wakeRisk.WithLabelValues(routeLabel("PATCH", routeEndpoint))
	return m, nil
}

// routeLabel is the value of the route label: method and path template, a closed set.
func routeLabel(method, route string) string { return method + " " + route }
