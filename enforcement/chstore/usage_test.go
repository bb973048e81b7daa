package chstore_test

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// UsageSince sums the latest version of each hour in [from, to) per project and metric, with the
// largest hour, for the whole fleet in one pass.
func TestUsageSince_LatestVersionsOfTheWindow(t *testing.T) {
	conn, db := chtest.New(t)
	ctx := context.Background()
	fact := func(project, metric string, hour time.Time, value, version uint64) collector.Fact {
		return collector.Fact{OrgID: "org-a", ProjectID: project, Metric: metric, Hour: hour, Value: value, PeriodID: "period-1",
			PeriodPlan: "scale", CollectedAt: t0.Add(48 * time.Hour), Version: version}
	}
	facts := []collector.Fact{
		fact("project-a", "compute_unit_seconds", t0, 100, 1),
		fact("project-a", "compute_unit_seconds", t0, 300, 2), // replaces the 100
		fact("project-a", "compute_unit_seconds", t0.Add(time.Hour), 200, 1),
		fact("project-a", "compute_unit_seconds", t0.Add(-time.Hour), 5000, 1),   // before the window
		fact("project-a", "compute_unit_seconds", t0.Add(24*time.Hour), 5000, 1), // at its end: excluded
		fact("project-a", "root_branch_bytes_month", t0.Add(2*time.Hour), 7, 1),
		fact("project-b", "compute_unit_seconds", t0.Add(3*time.Hour), 50, 1),
	}
	facts[len(facts)-1].OrgID = "org-b"
	if err := collectorstore.New(conn, db).InsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	var got []enforcement.PeriodUsage
	err := chstore.New(conn, db).UsageSince(ctx, t0, t0.Add(24*time.Hour), func(u enforcement.PeriodUsage) { got = append(got, u) })
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool {
		return got[i].ProjectID < got[j].ProjectID || got[i].ProjectID == got[j].ProjectID && got[i].Metric < got[j].Metric
	})
	want := []enforcement.PeriodUsage{
		{OrgID: "org-a", ProjectID: "project-a", Metric: "compute_unit_seconds", Sum: 500, Max: 300},
		{OrgID: "org-a", ProjectID: "project-a", Metric: "root_branch_bytes_month", Sum: 7, Max: 7},
		{OrgID: "org-b", ProjectID: "project-b", Metric: "compute_unit_seconds", Sum: 50, Max: 50},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("usage\n%+v\nwant\n%+v", got, want)
	}
}

// HourlyWatermarks reads the collector's hourly watermarks only, the latest of each feed.
func TestHourlyWatermarks_HourlyFeedsOnly(t *testing.T) {
	conn, db := chtest.New(t)
	ctx := context.Background()
	cs := collectorstore.New(conn, db)
	feed := func(org string, ep collector.Endpoint, g collector.Granularity) collector.Feed {
		return collector.Feed{OrgID: org, Endpoint: ep, Granularity: g}
	}
	sets := []struct {
		f     collector.Feed
		until time.Time
	}{
		{feed("org-a", collector.EndpointV2, collector.GranularityHourly), t0.Add(5 * time.Hour)},
		{feed("org-a", collector.EndpointV2, collector.GranularityHourly), t0.Add(6 * time.Hour)}, // later: wins
		{feed("org-a", collector.EndpointV2, collector.GranularityDaily), t0.Add(24 * time.Hour)},
		{feed("org-b", collector.EndpointLegacy, collector.GranularityHourly), t0.Add(2 * time.Hour)},
	}
	for i, s := range sets {
		if err := cs.SetWatermark(ctx, s.f, s.until, t0.Add(time.Duration(48+i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := chstore.New(conn, db).HourlyWatermarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []enforcement.HourlyWatermark{
		{OrgID: "org-a", Endpoint: string(collector.EndpointV2), CoveredUntil: t0.Add(6 * time.Hour)},
		{OrgID: "org-b", Endpoint: string(collector.EndpointLegacy), CoveredUntil: t0.Add(2 * time.Hour)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("watermarks\n%+v\nwant\n%+v", got, want)
	}
}

// Progress reads the collector's newest progress row of every project, from every org.
func TestProgress_NewestRowOfEveryProject(t *testing.T) {
	conn, db := chtest.New(t)
	ctx := context.Background()
	row := func(org, id string, through time.Time, updated int) collector.ProjectProgress {
		return collector.ProjectProgress{OrgID: org, ProjectID: id, CompleteThrough: through, FinalThrough: through, RereadThrough: through, LastActiveAt: through.Add(-time.Hour),
			Tier: collector.TierActive, UpdatedAt: t0.Add(time.Duration(updated) * time.Minute), RunID: "collect-1"}
	}
	err := collectorstore.New(conn, db).WriteProgress(ctx, []collector.ProjectProgress{
		row("org-a", "project-a", t0.Add(5*time.Hour), 2),
		row("org-a", "project-a", t0.Add(3*time.Hour), 1), // older: replaced
		row("org-b", "project-b", t0.Add(time.Hour), 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := chstore.New(conn, db).Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]enforcement.ProjectProgress{}
	for _, p := range got {
		byID[p.ProjectID] = p
	}
	want := map[string]enforcement.ProjectProgress{
		"project-a": {OrgID: "org-a", ProjectID: "project-a", CompleteThrough: t0.Add(5 * time.Hour)},
		"project-b": {OrgID: "org-b", ProjectID: "project-b", CompleteThrough: t0.Add(time.Hour)},
	}
	if len(got) != 2 || !reflect.DeepEqual(byID, want) {
		t.Fatalf("progress %+v\nwant %+v", got, want)
	}
}
