// Package metric builds a stage's Prometheus series and registers them as it goes, so a
// NewMetrics reads as the list of its series and returns an error rather than panicking.
package metric

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Builder creates series and registers each on its registry; the first failure is kept for Err
// and stops later registrations. A nil registry registers nothing.
type Builder struct {
	reg    prometheus.Registerer
	what   string
	shared bool
	err    error
}

// New returns a Builder registering on reg; what names the owner in errors ("collector metrics").
func New(reg prometheus.Registerer, what string) *Builder {
	return &Builder{reg: reg, what: what}
}

// Shared makes a series another owner already registered on the registry be reused instead of
// failing, so several clients (one per Neon org) can share a registry.
func (b *Builder) Shared() *Builder {
	b.shared = true
	return b
}

// Err is the first registration failure, naming the owner.
func (b *Builder) Err() error { return b.err }

// Counter builds and registers a counter without labels.
func (b *Builder) Counter(name, help string) prometheus.Counter {
	return add(b, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec builds and registers a counter with labels.
func (b *Builder) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return add(b, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Gauge builds and registers a gauge without labels.
func (b *Builder) Gauge(name, help string) prometheus.Gauge {
	return add(b, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// GaugeVec builds and registers a gauge with labels.
func (b *Builder) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return add(b, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// GaugeFunc builds and registers a gauge whose value f reports at scrape time.
func (b *Builder) GaugeFunc(name, help string, f func() float64) prometheus.GaugeFunc {
	return add(b, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Histogram builds and registers a histogram without labels.
func (b *Builder) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return add(b, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// HistogramVec builds and registers a histogram with labels.
func (b *Builder) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return add(b, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// Collector registers a collector of one's own (series computed at scrape time).
func (b *Builder) Collector(c prometheus.Collector) { add(b, c) }

func add[C prometheus.Collector](b *Builder, c C) C {
	if b.reg == nil || b.err != nil {
		return c
	}
	err := b.reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if b.shared && errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	b.err = fmt.Errorf("%s: %w", b.what, err)
	return c
}
