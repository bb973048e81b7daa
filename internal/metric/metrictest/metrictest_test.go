package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFind_MatchesLabelSubsets(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "C."}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "G."})
	reg.MustRegister(c, g)
	c.WithLabelValues("x", "1").Add(2)
	c.WithLabelValues("x", "2").Add(3)
	c.WithLabelValues("y", "1").Add(5)
	g.Set(7)

	if got := Value(t, reg, "c_total", map[string]string{"a": "x", "b": "2"}); got != 3 {
		t.Errorf("Value(a=x,b=2) = %v, want 3", got)
	}
	if got := Sum(t, reg, "c_total", map[string]string{"a": "x"}); got != 5 {
		t.Errorf("Sum(a=x) = %v, want 5", got)
	}
	if got := Sum(t, reg, "c_total", nil); got != 10 {
		t.Errorf("Sum(all) = %v, want 10", got)
	}
	if got := Find(t, reg, "c_total", map[string]string{"a": "z"}); len(got) != 0 {
		t.Errorf("Find(a=z) = %v, want none", got)
	}
	if got := Find(t, reg, "c_total", map[string]string{"nolabel": "x"}); len(got) != 0 {
		t.Errorf("Find(nolabel=x) = %v, want none: a label the series lacks must not match", got)
	}
	if got := Value(t, reg, "g", nil); got != 7 {
		t.Errorf("Value(g) = %v, want 7", got)
	}
}
