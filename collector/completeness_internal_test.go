package collector

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// TestCheckBounds: a value above its metric's ceiling, scaled by the bucket's hours, is refused
// naming project, metric, bucket, value and setting; at the ceiling it passes.
func TestCheckBounds(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	cu := neon.MetricComputeUnitSeconds
	grid := func(gran Granularity, from, to time.Time, v uint64) *Grid {
		g := NewGrid("o", []string{"proj-a", "proj-b"}, []string{cu}, Buckets(gran, from, to))
		if err := g.Observe("proj-b", cu, g.Buckets[len(g.Buckets)-1], v, neon.Period{ID: "p", Start: from}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	b := DefaultBounds()
	if err := CheckBounds(grid(GranularityHourly, h(0), h(3), b[cu]), b, GranularityHourly); err != nil {
		t.Fatalf("a value at the ceiling: %v", err)
	}
	err := CheckBounds(grid(GranularityHourly, h(0), h(3), math.MaxInt64-807), b, GranularityHourly)
	for _, want := range []string{"proj-b", cu, "hour 2026-11-27T02:00:00Z", "9223372036854775000", "NEONMETER_COLLECT_VALUE_BOUNDS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("a value near int64 max: %v; want it to name %q", err, want)
		}
	}
	// A day holds 24 hours: 24 × the hourly ceiling passes, one more fails.
	day := mustTime(t, "2026-10-01T00:00:00Z")
	if err := CheckBounds(grid(GranularityDaily, day, day.Add(48*time.Hour), 24*b[cu]), b, GranularityDaily); err != nil {
		t.Fatalf("a full day at the ceiling: %v", err)
	}
	if err := CheckBounds(grid(GranularityDaily, day, day.Add(48*time.Hour), 24*b[cu]+1), b, GranularityDaily); err == nil || !strings.Contains(err.Error(), "day 2026-10-02") {
		t.Fatalf("a day above 24 × the ceiling: %v", err)
	}
	// February 2027 has 672 hours.
	feb := mustTime(t, "2027-02-01T00:00:00Z")
	if err := CheckBounds(grid(GranularityMonthly, feb, feb.AddDate(0, 1, 0), 672*b[cu]+1), b, GranularityMonthly); err == nil {
		t.Fatal("a month above 672 × the ceiling passed")
	}
	if got := scaledCeiling(math.MaxUint64/2, GranularityMonthly, feb); got != math.MaxUint64 {
		t.Errorf("a huge ceiling scaled to %d; it must saturate, not wrap", got)
	}

	// Defaults: every metric of both routes has a ceiling, all far below int64 max even summed
	// over a month.
	for _, m := range knownMetrics() {
		if c, ok := b[m]; !ok || c == 0 || c > math.MaxInt64/744 {
			t.Errorf("default bound of %s: %d", m, c)
		}
	}
	if b[cu] != 56*3600*100 {
		t.Errorf("compute_unit_seconds bound %d, want 56 CU × 3600 s × 100 computes", b[cu])
	}
	over, err := WithOverrides(map[string]uint64{cu: 7200})
	if err != nil || over[cu] != 7200 || over[neon.MetricWrittenDataBytes] != b[neon.MetricWrittenDataBytes] {
		t.Fatalf("override: %v %v", over, err)
	}
	for name, m := range map[string]map[string]uint64{"unknown metric": {"cpu_seconds": 1}, "zero": {cu: 0}} {
		if _, err := WithOverrides(m); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestCheckProjects: an empty answer after a non-empty sweep is never complete, a drop below the
// ratio is refused, an operator can accept a drop once, and growth or a first sweep passes.
func TestCheckProjects(t *testing.T) {
	last := Run{RunID: "collect-x", Projects: 800, StartedAt: mustTime(t, "2026-11-27T11:20:00Z")}
	cases := []struct {
		name   string
		seen   int
		last   Run
		ratio  float64
		accept bool
		want   string // "" = complete
	}{
		{"0 of 800", 0, last, 0.5, false, "empty answer is never complete"},
		{"0 of 800 with the smallest ratio", 0, last, 1e-9, false, "never complete"},
		{"399 of 800", 399, last, 0.5, false, "NEONMETER_COLLECT_MIN_PROJECTS_RATIO=0.5"},
		{"400 of 800", 400, last, 0.5, false, ""},
		{"900 of 800", 900, last, 0.5, false, ""},
		{"first sweep", 0, Run{}, 0.5, false, ""},
		{"accepted drop", 0, last, 0.5, true, ""},
	}
	for _, tc := range cases {
		err := CheckProjects("org-a", tc.seen, tc.last, tc.ratio, tc.accept)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "collect-x") || !strings.Contains(err.Error(), "--accept-project-drop")):
			t.Errorf("%s: %v; want an error saying %q, naming the last run and the way out", tc.name, err, tc.want)
		}
	}
}

// TestRun_Abandoned: a running run is abandoned once its recorded deadline (or, for old rows,
// the default one) is more than AbandonGrace past; finished runs never are.
func TestRun_Abandoned(t *testing.T) {
	start := mustTime(t, "2026-11-27T10:00:00Z")
	r := Run{Outcome: OutcomeRunning, StartedAt: start, DeadlineAt: start.Add(10 * time.Minute)}
	if r.Abandoned(start.Add(10*time.Minute + AbandonGrace)) {
		t.Error("abandoned at its deadline plus grace exactly")
	}
	if !r.Abandoned(start.Add(10*time.Minute + AbandonGrace + time.Second)) {
		t.Error("not abandoned a second after deadline plus grace")
	}
	old := Run{Outcome: OutcomeRunning, StartedAt: start}
	if old.Abandoned(start.Add(DefaultDeadline)) || !old.Abandoned(start.Add(DefaultDeadline+AbandonGrace+time.Second)) {
		t.Error("a row without a deadline is not judged by the default one")
	}
	done := r
	done.Outcome = OutcomeFailed
	if done.Abandoned(start.Add(24 * time.Hour)) {
		t.Error("a failed run shown as abandoned")
	}
}
