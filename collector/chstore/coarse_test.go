package chstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/collector/chstore"
)

func coarse(project string, granularity collector.Granularity, start time.Time, value, version uint64) collector.CoarseFact {
	end := start.AddDate(0, 0, 1)
	if granularity == collector.GranularityMonthly {
		end = start.AddDate(0, 1, 0)
	}
	return collector.CoarseFact{OrgID: "org-1", ProjectID: project, Metric: "root_branch_bytes_month", Granularity: granularity,
		BucketStart: start, BucketEnd: end, Value: value, PeriodID: "period-1", PeriodPlan: "launch",
		CollectedAt: end.Add(time.Hour), Version: version}
}

func TestCoarseFacts(t *testing.T) {
	store := newTestStore(t)
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	jan2 := jan.AddDate(0, 0, 1)
	feb := jan.AddDate(0, 1, 0)
	batches := [][]collector.CoarseFact{
		{coarse("p1", collector.GranularityDaily, jan, 100, 1), coarse("p1", collector.GranularityDaily, jan2, 200, 1)},
		{coarse("p1", collector.GranularityDaily, jan, 150, 2)}, // revision replaces
		{coarse("p1", collector.GranularityDaily, jan2, 1, 0)},  // older version loses
		{coarse("p1", collector.GranularityMonthly, jan, 9000, 1), coarse("p2", collector.GranularityMonthly, feb, 7, 1)},
		{coarse("p3", collector.GranularityMonthly, jan, 5, 1)},
	}
	for _, b := range batches {
		if err := store.InsertCoarseFacts(t.Context(), b); err != nil {
			t.Fatalf("insert coarse facts: %v", err)
		}
	}
	tests := []struct {
		name     string
		projects []string
		from, to time.Time
		want     map[chstore.CoarseKey]chstore.StoredFact
	}{
		{"january, both grains", []string{"p1", "p2"}, jan, feb, map[chstore.CoarseKey]chstore.StoredFact{
			{"p1", "root_branch_bytes_month", "daily", jan}:   {150, 2},
			{"p1", "root_branch_bytes_month", "daily", jan2}:  {200, 1},
			{"p1", "root_branch_bytes_month", "monthly", jan}: {9000, 1},
		}},
		{"february", []string{"p1", "p2"}, feb, feb.AddDate(0, 1, 0), map[chstore.CoarseKey]chstore.StoredFact{
			{"p2", "root_branch_bytes_month", "monthly", feb}: {7, 1},
		}},
		{"no projects", nil, jan, feb, map[chstore.CoarseKey]chstore.StoredFact{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.StoredCoarseFacts(t.Context(), "org-1", tt.projects, tt.from, tt.to)
			if err != nil {
				t.Fatalf("stored coarse facts: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Coarse facts never show up in the hourly contract.
	if n := store.rows(t, "usage_hourly"); n != 0 {
		t.Fatalf("usage_hourly has %d rows, want 0", n)
	}
}

func TestInsertCoarseFacts_Invalid(t *testing.T) {
	store := newTestStore(t)
	base := coarse("p1", collector.GranularityDaily, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 1, 1)
	assertRefused(t, store, "usage_coarse", store.InsertCoarseFacts, base, nil, []refusal[collector.CoarseFact]{
		{"hourly is not coarse", func(f *collector.CoarseFact) { f.Granularity = collector.GranularityHourly }, "not daily or monthly"},
		{"end before start", func(f *collector.CoarseFact) { f.BucketEnd = f.BucketStart }, "end after its start"},
		{"no project", func(f *collector.CoarseFact) { f.ProjectID = "" }, "empty"},
	})
}
