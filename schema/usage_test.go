package schema_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestMetricTotals(t *testing.T) {
	conn, db := chtest.New(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	facts := []schema.Fact{
		{OrgID: "o", ProjectID: "p1", Metric: "a", Hour: t0, Value: 5, Version: 1},
		{OrgID: "o", ProjectID: "p1", Metric: "a", Hour: t0, Value: 7, Version: 2}, // replaces 5
		{OrgID: "o", ProjectID: "p2", Metric: "a", Hour: t0.Add(time.Hour), Value: 1, Version: 1},
		{OrgID: "o", ProjectID: "p1", Metric: "b", Hour: t0, Value: 100, Version: 1},
		{OrgID: "other", ProjectID: "p1", Metric: "a", Hour: t0, Value: 1000, Version: 1},
	}
	if err := schema.InsertFacts(t.Context(), conn, db, facts); err != nil {
		t.Fatal(err)
	}
	got, err := schema.MetricTotals(t.Context(), conn, db, "o", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.MetricTotal{{"a", 2, 8}, {"b", 1, 100}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestQuery_Literal(t *testing.T) {
	q := schema.MetricTotalsQuery("org-'x'", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	got, err := q.Literal("neonmeter")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM neonmeter.usage_hourly", `org_id = 'org-\'x\''`, "hour >= toDateTime('2026-11-01 00:00:00', 'UTC')"} {
		if !strings.Contains(got, want) {
			t.Errorf("literal SQL lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "?") {
		t.Errorf("placeholders left:\n%s", got)
	}
}
