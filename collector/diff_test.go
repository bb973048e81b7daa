package collector

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"

	"github.com/neonmeter/neonmeter/schema"
)

func TestDiff(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	provisional := h(10) // hours 10 and later are provisional
	obs := func(p, m string, hour int, v uint64) Observation {
		return Observation{ProjectID: p, Metric: m, Hour: h(hour), Value: v, PeriodID: "per", PeriodPlan: "scale"}
	}
	st := func(v, ver uint64) schema.StoredFact {
		return schema.StoredFact{Value: v, Version: ver, PeriodID: "per", PeriodPlan: "scale"}
	}

	cases := []struct {
		name      string
		observed  []Observation
		projects  []string
		stored    map[Key]schema.StoredFact
		wantFacts map[Key]uint64 // key -> written value
		wantRevs  int
	}{
		{name: "new values are written", observed: []Observation{obs("p1", "cpu", 1, 5), obs("p1", "cpu", 2, 7)},
			projects: []string{"p1"}, wantFacts: map[Key]uint64{KeyOf("p1", "cpu", h(1)): 5, KeyOf("p1", "cpu", h(2)): 7}},
		{name: "same values write nothing", observed: []Observation{obs("p1", "cpu", 1, 5)}, projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p1", "cpu", h(1)): st(5, 100)}, wantFacts: map[Key]uint64{}},
		{name: "changed value is a revision", observed: []Observation{obs("p1", "cpu", 1, 6)}, projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p1", "cpu", h(1)): st(5, 100)}, wantFacts: map[Key]uint64{KeyOf("p1", "cpu", h(1)): 6}, wantRevs: 1},
		{name: "missing outside provisional window becomes zero", projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p1", "cpu", h(3)): st(5, 100)}, wantFacts: map[Key]uint64{KeyOf("p1", "cpu", h(3)): 0}, wantRevs: 1},
		{name: "missing inside provisional window is not yet known", projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p1", "cpu", h(10)): st(5, 100)}, wantFacts: map[Key]uint64{}},
		{name: "stored zero stays", projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p1", "cpu", h(3)): st(0, 100)}, wantFacts: map[Key]uint64{}},
		{name: "projects outside the page are untouched", projects: []string{"p1"},
			stored: map[Key]schema.StoredFact{KeyOf("p2", "cpu", h(3)): st(5, 100)}, wantFacts: map[Key]uint64{}},
		{name: "explicit zero with nothing stored writes nothing", observed: []Observation{obs("p1", "cpu", 1, 0)},
			projects: []string{"p1"}, wantFacts: map[Key]uint64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			periods := Periods{"p1": []neon.Period{{ID: "old", Plan: "launch", Start: h(-48), End: h(0)}, {ID: "per", Plan: "scale", Start: h(0)}}}
			d := Diff(DiffInput{OrgID: "org", Observed: tc.observed, Projects: tc.projects, Stored: tc.stored, Periods: periods,
				ProvisionalFrom: provisional, Version: 50, CollectedAt: h(20), RunID: "run"})
			if len(d.Facts) != len(tc.wantFacts) {
				t.Fatalf("facts: got %+v, want %v", d.Facts, tc.wantFacts)
			}
			for _, f := range d.Facts {
				k := KeyOf(f.ProjectID, f.Metric, f.Hour)
				want, ok := tc.wantFacts[k]
				if !ok || f.Value != want {
					t.Errorf("fact %v = %d, want %v (present %v)", k, f.Value, want, ok)
				}
				if s, ok := tc.stored[k]; ok && f.Version <= s.Version {
					t.Errorf("fact %v version %d does not exceed stored %d", k, f.Version, s.Version)
				}
				if f.OrgID != "org" || f.PeriodID != "per" || f.PeriodPlan != "scale" {
					t.Errorf("fact %v lost its identity columns: %+v", k, f)
				}
			}
			if len(d.Revisions) != tc.wantRevs {
				t.Fatalf("revisions: got %d, want %d", len(d.Revisions), tc.wantRevs)
			}
			for _, r := range d.Revisions {
				s := tc.stored[KeyOf(r.ProjectID, r.Metric, r.Hour)]
				if r.OldValue != s.Value || r.OldVersion != s.Version || r.RunID != "run" {
					t.Errorf("revision %+v does not name the replaced row %+v", r, s)
				}
			}
		})
	}
}

func TestDiff_RerunWritesNothing(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-27T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	var observed []Observation
	for i := 0; i < 48; i++ {
		observed = append(observed, Observation{ProjectID: "p", Metric: "m", Hour: h(i), Value: uint64(i * 1000)})
	}
	first := Diff(DiffInput{OrgID: "o", Observed: observed, Projects: []string{"p"}, ProvisionalFrom: h(46), Version: 1})
	stored := map[Key]schema.StoredFact{}
	for _, f := range first.Facts {
		stored[KeyOf(f.ProjectID, f.Metric, f.Hour)] = schema.StoredFact{Value: f.Value, Version: f.Version}
	}
	second := Diff(DiffInput{OrgID: "o", Observed: observed, Projects: []string{"p"}, Stored: stored, ProvisionalFrom: h(46), Version: 2})
	if len(first.Facts) != 47 { // hour 0 has value 0 and nothing stored
		t.Fatalf("first run wrote %d facts, want 47", len(first.Facts))
	}
	if len(second.Facts) != 0 || len(second.Revisions) != 0 || second.Unchanged != 47 {
		t.Fatalf("re-run wrote %d facts, %d revisions, %d unchanged; want 0, 0, 47", len(second.Facts), len(second.Revisions), second.Unchanged)
	}
}

func TestPeriods_Of(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-15T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	// A plan change at 13:27: the 13:00 bucket starts in the old period and belongs to it.
	ps := Periods{"p": []neon.Period{
		{ID: "nov", Plan: "launch", Start: h(-14 * 24), End: h(13).Add(27 * time.Minute)},
		{ID: "nov-upgraded", Plan: "scale", Start: h(13).Add(27 * time.Minute)},
	}}
	for _, tc := range []struct {
		hour int
		id   string
	}{{0, "nov"}, {12, "nov"}, {13, "nov"}, {14, "nov-upgraded"}, {30, "nov-upgraded"}} {
		if id, _ := ps.Of("p", h(tc.hour)); id != tc.id {
			t.Errorf("hour %d: period %q, want %q", tc.hour, id, tc.id)
		}
	}
	if id, plan := ps.Of("unknown", h(1)); id != "" || plan != "" {
		t.Errorf("unknown project: %q %q", id, plan)
	}
}
