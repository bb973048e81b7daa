package chstore_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/collector/chstore"
)

func TestMetricTotals(t *testing.T) {
	store := newTestStore(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	facts := []collector.Fact{
		{OrgID: "o", ProjectID: "p1", Metric: "a", Hour: t0, Value: 5, Version: 1},
		{OrgID: "o", ProjectID: "p1", Metric: "a", Hour: t0, Value: 7, Version: 2}, // replaces 5
		{OrgID: "o", ProjectID: "p2", Metric: "a", Hour: t0.Add(time.Hour), Value: 1, Version: 1},
		{OrgID: "o", ProjectID: "p1", Metric: "b", Hour: t0, Value: 100, Version: 1},
		{OrgID: "other", ProjectID: "p1", Metric: "a", Hour: t0, Value: 1000, Version: 1},
	}
	if err := store.InsertFacts(t.Context(), facts); err != nil {
		t.Fatal(err)
	}
	got, err := store.MetricTotals(t.Context(), "o", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []chstore.MetricTotal{{"a", 2, 8}, {"b", 1, 100}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
