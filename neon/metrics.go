package neon

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
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
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neonmeter_neon_api_requests_total",
			Help: "HTTP requests sent to the Neon API (every attempt), by route and status code (or network/timeout).",
		}, []string{"route", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neonmeter_neon_api_retries_total",
			Help: "Neon API requests repeated after a retryable failure, by route and reason.",
		}, []string{"route", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "neonmeter_neon_api_request_duration_seconds",
			Help:    "Duration of one Neon API attempt in seconds, body read included, by route.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neonmeter_neon_api_throttle_wait_seconds_total",
			Help: "Seconds spent waiting for the client-side rate limiter, by token bucket.",
		}, []string{"bucket"}),
		wakeRisk: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neonmeter_neon_api_wake_risk_requests_total",
			Help: "Requests sent on routes that can wake an idle compute (and cost compute), by route.",
		}, []string{"route"}),
	}
	// Series that dashboards and alerts read exist from the start, at zero.
	m.throttle.WithLabelValues(bucketConsumption)
	m.throttle.WithLabelValues(bucketGeneral)
	m.wakeRisk.WithLabelValues(routeLabel("PATCH", routeEndpoint))
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.throttle, err = register(reg, m.throttle); err != nil {
		return nil, err
	}
	if m.wakeRisk, err = register(reg, m.wakeRisk); err != nil {
		return nil, err
	}
	return m, nil
}

// register lets several clients (e.g. one per org) share a registry: the second one reuses the
// collectors the first registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}

// routeLabel is the value of the route label: method and path template, a closed set.
func routeLabel(method, route string) string { return method + " " + route }
