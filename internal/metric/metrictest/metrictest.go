// Package metrictest reads series back from a Prometheus registry in tests.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Find returns the values (counter, gauge or untyped) of the series of family name whose labels
// include every pair of labels; nil labels match every series of the family.
func Find(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) []float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				out = append(out, value(m))
			}
		}
	}
	return out
}

// Value is the value of the one series Find finds; none or several fail the test.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	vs := Find(t, g, name, labels)
	if len(vs) != 1 {
		t.Fatalf("%d series %s%v, want exactly one", len(vs), name, labels)
	}
	return vs[0]
}

// Sum adds the values of the series Find finds: 0 when there are none.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, v := range Find(t, g, name, labels) {
		sum += v
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	found := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(labels)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}
