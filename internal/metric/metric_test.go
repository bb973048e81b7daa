package metric

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBuilder_SharedReusesAndPlainFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := New(reg, "first").CounterVec("x_total", "X.", "route")
	first.WithLabelValues("a").Inc()

	again := New(reg, "second").Shared().CounterVec("x_total", "X.", "route")
	if again != first {
		t.Fatal("a shared builder did not reuse the registered series")
	}
	b := New(reg, "third")
	b.CounterVec("x_total", "X.", "route")
	if err := b.Err(); err == nil || !strings.HasPrefix(err.Error(), "third: ") {
		t.Fatalf("Err() = %v, want a duplicate-registration error naming the owner", err)
	}
	if New(nil, "none").Gauge("g", "G.") == nil {
		t.Fatal("a nil registry should still build the series")
	}
}
