package collector

import (
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// stored is a stored fact for grid tests.
type stored struct {
	project, metric string
	hour            int
	value, version  uint64
}

// observed is a value Neon reported, for grid tests.
type observed struct {
	project, metric string
	hour            int
	value           uint64
}

func TestDiff(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	per := neon.Period{ID: "per", Plan: "scale", Start: h(0)}
	older := neon.Period{ID: "old", Plan: "launch", Start: h(-48), End: h(0)}
	cases := []struct {
		name      string
		observed  []observed
		stored    []stored
		wantFacts map[string]uint64 // "project/metric/hour" -> written value
		wantRevs  int
	}{
		{name: "new values are written", observed: []observed{{"p1", "cpu", 1, 5}, {"p1", "cpu", 2, 7}},
			wantFacts: map[string]uint64{"p1/cpu/1": 5, "p1/cpu/2": 7}},
		{name: "same values write nothing", observed: []observed{{"p1", "cpu", 1, 5}},
			stored: []stored{{"p1", "cpu", 1, 5, 100}}, wantFacts: map[string]uint64{}},
		{name: "changed value is a revision", observed: []observed{{"p1", "cpu", 1, 6}},
			stored: []stored{{"p1", "cpu", 1, 5, 100}}, wantFacts: map[string]uint64{"p1/cpu/1": 6}, wantRevs: 1},
		{name: "highest stored version is compared", observed: []observed{{"p1", "cpu", 1, 6}},
			stored: []stored{{"p1", "cpu", 1, 5, 100}, {"p1", "cpu", 1, 6, 101}, {"p1", "cpu", 1, 4, 99}}, wantFacts: map[string]uint64{}},
		{name: "missing outside provisional window becomes zero",
			stored: []stored{{"p1", "cpu", 3, 5, 100}}, wantFacts: map[string]uint64{"p1/cpu/3": 0}, wantRevs: 1},
		{name: "missing inside provisional window is not yet known",
			stored: []stored{{"p1", "cpu", 10, 5, 100}}, wantFacts: map[string]uint64{}},
		{name: "stored zero stays", stored: []stored{{"p1", "cpu", 3, 0, 100}}, wantFacts: map[string]uint64{}},
		{name: "projects outside the page are untouched",
			stored: []stored{{"p9", "cpu", 3, 5, 100}}, wantFacts: map[string]uint64{}},
		{name: "explicit zero with nothing stored writes nothing", observed: []observed{{"p1", "cpu", 1, 0}},
			wantFacts: map[string]uint64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGrid("org", []string{"p1", "p2"}, []string{"cpu", "disk"}, Buckets(GranularityHourly, h(0), h(12)))
			for _, o := range tc.observed {
				if err := g.Observe(o.project, o.metric, h(o.hour), o.value, per); err != nil {
					t.Fatal(err)
				}
			}
			g.projectPeriods[0] = append(g.projectPeriods[0], int32(len(g.periods)), int32(len(g.periods)+1))
			g.periods = append(g.periods, older, per)
			byKey := map[string]stored{}
			for _, s := range tc.stored {
				g.StoreByName(s.project, s.metric, h(s.hour), s.value, s.version)
				k := fmt.Sprintf("%s/%s/%d", s.project, s.metric, s.hour)
				if old, ok := byKey[k]; !ok || s.version > old.version {
					byKey[k] = s
				}
			}
			d := Diff(g, DiffOptions{ProvisionalFrom: h(10), Version: 50, CollectedAt: h(20), RunID: "run"})
			if len(d.Facts) != len(tc.wantFacts) {
				t.Fatalf("facts: got %+v, want %v", d.Facts, tc.wantFacts)
			}
			for _, f := range d.Facts {
				k := fmt.Sprintf("%s/%s/%d", f.ProjectID, f.Metric, int(f.Hour.Sub(h(0))/time.Hour))
				want, ok := tc.wantFacts[k]
				if !ok || f.Value != want {
					t.Errorf("fact %s = %d, want %v (present %v)", k, f.Value, want, ok)
				}
				if s, ok := byKey[k]; ok && f.Version <= s.version {
					t.Errorf("fact %s version %d does not exceed stored %d", k, f.Version, s.version)
				}
				if f.OrgID != "org" || f.PeriodID != "per" || f.PeriodPlan != "scale" {
					t.Errorf("fact %s lost its identity or period: %+v", k, f)
				}
			}
			if len(d.Revisions) != tc.wantRevs {
				t.Fatalf("revisions: got %d, want %d", len(d.Revisions), tc.wantRevs)
			}
			for _, r := range d.Revisions {
				s := byKey[fmt.Sprintf("%s/%s/%d", r.ProjectID, r.Metric, int(r.Hour.Sub(h(0))/time.Hour))]
				if r.OldValue != s.value || r.OldVersion != s.version || r.RunID != "run" {
					t.Errorf("revision %+v does not name the replaced row %+v", r, s)
				}
			}
		})
	}
}

func TestDiff_RerunWritesNothing(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	buckets := Buckets(GranularityHourly, h(0), h(48))
	first := NewGrid("o", []string{"p"}, []string{"m"}, buckets)
	for i := 0; i < 48; i++ {
		if err := first.Observe("p", "m", h(i), uint64(i*1000), neon.Period{ID: "per", Start: h(0)}); err != nil {
			t.Fatal(err)
		}
	}
	d1 := Diff(first, DiffOptions{ProvisionalFrom: h(46), Version: 1})
	second := NewGrid("o", []string{"p"}, []string{"m"}, buckets)
	for i := 0; i < 48; i++ {
		_ = second.Observe("p", "m", h(i), uint64(i*1000), neon.Period{ID: "per", Start: h(0)})
	}
	for _, f := range d1.Facts {
		second.StoreByName(f.ProjectID, f.Metric, f.Hour, f.Value, f.Version)
	}
	d2 := Diff(second, DiffOptions{ProvisionalFrom: h(46), Version: 2})
	if len(d1.Facts) != 47 { // hour 0 has value 0 and nothing stored
		t.Fatalf("first run wrote %d facts, want 47", len(d1.Facts))
	}
	if len(d2.Facts) != 0 || len(d2.Revisions) != 0 || d2.Unchanged != 47 {
		t.Fatalf("re-run wrote %d facts, %d revisions, %d unchanged; want 0, 0, 47", len(d2.Facts), len(d2.Revisions), d2.Unchanged)
	}
}

func TestFlattenPage_RejectsWhatWasNotAsked(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	buckets := Buckets(GranularityHourly, h(0), h(4))
	page := func(start time.Time, metric string, value int64, projects ...string) *neon.ConsumptionPage {
		var pg neon.ConsumptionPage
		for _, p := range projects {
			pg.Projects = append(pg.Projects, neon.ProjectConsumption{ProjectID: p, Periods: []neon.Period{{ID: "per", Plan: "scale", Start: h(-10),
				Consumption: []neon.Timeframe{{Start: start, End: start.Add(time.Hour), Metrics: []neon.MetricValue{{Name: metric, Value: value}}}}}}})
		}
		return &pg
	}
	if g, err := FlattenPage("o", page(h(1), "cpu", 5, "a", "b"), []string{"cpu"}, buckets); err != nil || g.Values != 2 {
		t.Fatalf("valid page: %v, %+v", err, g)
	}
	for name, pg := range map[string]*neon.ConsumptionPage{
		"outside the window": page(h(7), "cpu", 5, "a"),
		"unaligned bucket":   page(h(1).Add(30*time.Minute), "cpu", 5, "a"),
		"metric not asked":   page(h(1), "disk", 5, "a"),
		"negative value":     page(h(1), "cpu", -5, "a"),
		"project twice":      page(h(1), "cpu", 5, "a", "a"),
	} {
		if _, err := FlattenPage("o", pg, []string{"cpu"}, buckets); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGrid_PeriodOf(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-15T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	// A plan change at 13:27: the 13:00 bucket starts in the old period and belongs to it.
	g := NewGrid("o", []string{"p"}, []string{"m"}, Buckets(GranularityHourly, h(0), h(40)))
	g.periods = []neon.Period{
		{ID: "nov", Plan: "launch", Start: h(-14 * 24), End: h(13).Add(27 * time.Minute)},
		{ID: "nov-upgraded", Plan: "scale", Start: h(13).Add(27 * time.Minute)},
	}
	g.projectPeriods[0] = []int32{0, 1}
	for _, tc := range []struct {
		hour int
		id   string
	}{{0, "nov"}, {12, "nov"}, {13, "nov"}, {14, "nov-upgraded"}, {30, "nov-upgraded"}} {
		if id, _ := g.periodOf(0, h(tc.hour)); id != tc.id {
			t.Errorf("hour %d: period %q, want %q", tc.hour, id, tc.id)
		}
	}
}

func TestBuckets(t *testing.T) {
	from, to := mustTime(t, "2026-01-30T00:00:00Z"), mustTime(t, "2026-04-01T00:00:00Z")
	if got := Buckets(GranularityMonthly, mustTime(t, "2026-01-01T00:00:00Z"), to); len(got) != 3 || !got[1].Equal(mustTime(t, "2026-02-01T00:00:00Z")) {
		t.Errorf("monthly: %v", got)
	}
	if got := Buckets(GranularityDaily, from, mustTime(t, "2026-02-02T00:00:00Z")); len(got) != 3 {
		t.Errorf("daily: %v", got)
	}
	if got := Buckets(GranularityHourly, from, from.Add(5*time.Hour)); len(got) != 5 {
		t.Errorf("hourly: %v", got)
	}
}

// BenchmarkDiff measures flattening and diffing one full page (100 projects × 8 metrics × 72 h)
// whose values are all stored already: the common case of an hourly sweep.
func BenchmarkDiff(b *testing.B) {
	from := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	metrics := neon.V2Metrics()
	buckets := Buckets(GranularityHourly, from, from.Add(72*time.Hour))
	var page neon.ConsumptionPage
	for p := 0; p < 100; p++ {
		per := neon.Period{ID: "per", Plan: "scale", Start: from}
		for h := range buckets {
			tf := neon.Timeframe{Start: buckets[h], End: buckets[h].Add(time.Hour)}
			for _, m := range metrics {
				tf.Metrics = append(tf.Metrics, neon.MetricValue{Name: m, Value: int64(p*1000 + h + 1)})
			}
			per.Consumption = append(per.Consumption, tf)
		}
		page.Projects = append(page.Projects, neon.ProjectConsumption{ProjectID: fmt.Sprintf("project-%08d", p), Periods: []neon.Period{per}})
	}
	values := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g, err := FlattenPage("o", &page, metrics, buckets)
		if err != nil {
			b.Fatal(err)
		}
		for p := range g.Projects {
			for m := range metrics {
				for h, bucket := range buckets {
					g.Store(p, m, bucket.Unix(), uint64(p*1000+h+1), 1)
				}
			}
		}
		if d := Diff(g, DiffOptions{ProvisionalFrom: from.Add(70 * time.Hour), Version: 2}); len(d.Facts) != 0 {
			b.Fatal("unexpected changes")
		}
		values += g.Values
	}
	b.ReportMetric(float64(values)/b.Elapsed().Seconds(), "values/s")
}
