package chstore_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
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
	conn, db := chtest.New(t)
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
		if err := chstore.New(conn, db).InsertCoarseFacts(t.Context(), b); err != nil {
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
			got, err := chstore.New(conn, db).StoredCoarseFacts(t.Context(), "org-1", tt.projects, tt.from, tt.to)
			if err != nil {
				t.Fatalf("stored coarse facts: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Coarse facts never show up in the hourly contract.
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".usage_hourly"); n != 0 {
		t.Fatalf("usage_hourly has %d rows, want 0", n)
	}
}

func TestInsertCoarseFacts_Invalid(t *testing.T) {
	conn, db := chtest.New(t)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		edit func(*collector.CoarseFact)
		want string
	}{
		{"hourly is not coarse", func(f *collector.CoarseFact) { f.Granularity = collector.GranularityHourly }, "not daily or monthly"},
		{"end before start", func(f *collector.CoarseFact) { f.BucketEnd = f.BucketStart }, "end after its start"},
		{"no project", func(f *collector.CoarseFact) { f.ProjectID = "" }, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := coarse("p1", collector.GranularityDaily, start, 1, 1)
			tt.edit(&f)
			err := chstore.New(conn, db).InsertCoarseFacts(t.Context(), []collector.CoarseFact{f})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".usage_coarse"); n != 0 {
		t.Fatalf("usage_coarse has %d rows after refused inserts", n)
	}
}
