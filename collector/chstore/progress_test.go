package chstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

func progressRow(project string, through, active, updated time.Time, tier collector.Tier) collector.ProjectProgress {
	return collector.ProjectProgress{OrgID: "org-1", ProjectID: project, CompleteThrough: through, FinalThrough: through, RereadThrough: through, LastActiveAt: active,
		Tier: tier, UpdatedAt: updated, RunID: "cycle-" + updated.Format("150405")}
}

func TestProgress_WriteScanAndOf(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	h := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	writes := [][]collector.ProjectProgress{
		{progressRow("p-b", h.Add(-3*time.Hour), time.Time{}, h, collector.TierRolling), progressRow("p-a", h.Add(-2*time.Hour), h.Add(-150*time.Minute), h, collector.TierActive)},
		{progressRow("p-b", h, h.Add(-10*time.Minute), h.Add(time.Minute), collector.TierActive)}, // newer row wins
		{collector.ProjectProgress{OrgID: "org-2", ProjectID: "p-a", CompleteThrough: h, FinalThrough: h, RereadThrough: h, UpdatedAt: h, RunID: "r", Tier: collector.TierClosing}},
	}
	for _, w := range writes {
		if err := s.WriteProgress(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	var got []collector.ProjectProgress
	if err := s.ScanProgress(ctx, "org-1", func(p collector.ProjectProgress) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ProjectID != "p-a" || got[1].ProjectID != "p-b" {
		t.Fatalf("scan %+v, want p-a then p-b", got)
	}
	if !got[1].CompleteThrough.Equal(h) || !got[1].LastActiveAt.Equal(h.Add(-10*time.Minute)) || !got[0].LastActiveAt.Equal(h.Add(-150*time.Minute)) {
		t.Fatalf("scan %+v: want the latest rows", got)
	}
	of, err := s.ProgressOf(ctx, "org-1", []string{"p-b", "p-x"})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := of["p-b"]; len(of) != 1 || !ok || p.Tier != collector.TierActive || !p.UpdatedAt.Equal(h.Add(time.Minute)) || p.RunID != "cycle-120100" {
		t.Fatalf("progress of = %+v", of)
	}
	// A never-active project reads back with a zero last_active_at.
	of, err = s.ProgressOf(ctx, "org-1", []string{"p-a"})
	if err != nil || !of["p-a"].LastActiveAt.Equal(h.Add(-150*time.Minute)) {
		t.Fatalf("progress of p-a = %+v, %v", of, err)
	}
}

func TestWriteProgress_Invalid(t *testing.T) {
	s := newTestStore(t)
	h := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	base, ok := progressRow("p-a", h, time.Time{}, h, collector.TierRolling), progressRow("p-ok", h, h, h, collector.TierActive)
	assertRefused(t, s, "collection_progress", s.WriteProgress, base, []collector.ProjectProgress{ok}, []refusal[collector.ProjectProgress]{
		{"no project", func(p *collector.ProjectProgress) { p.ProjectID = "" }, "empty org, project or run id"},
		{"not on the hour", func(p *collector.ProjectProgress) { p.CompleteThrough = h.Add(time.Minute) }, "not the start of an hour"},
		{"final not on the hour", func(p *collector.ProjectProgress) { p.FinalThrough = h.Add(-time.Minute) }, "final_through"},
		{"final after complete", func(p *collector.ProjectProgress) { p.FinalThrough = h.Add(time.Hour) }, "is after complete_through"},
		{"reread after complete", func(p *collector.ProjectProgress) { p.RereadThrough = h.Add(time.Hour) }, "reread_through"},
		{"unknown tier", func(p *collector.ProjectProgress) { p.Tier = 9 }, "unknown tier"},
		{"no update time", func(p *collector.ProjectProgress) { p.UpdatedAt = time.Time{} }, "updated_at"},
	})
}

// The at-risk set is enforcement's table: the newest row of a project says whether it is at
// risk, and only the org's projects count.
func TestScanAtRisk_NewestRowPerProject(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	h := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	insert := schema.Query{Name: "test.at_risk", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.enforcement_at_risk (project_id, org_id, at_risk, reason, updated_at, run_id)",
		Rows: [][]any{
			{"p-c", "org-1", uint8(1), "warning", h, "e1"},
			{"p-a", "org-1", uint8(1), "over", h, "e1"},
			{"p-b", "org-1", uint8(1), "over", h, "e1"},
			{"p-b", "org-1", uint8(0), "", h.Add(time.Hour), "e2"}, // left the set
			{"p-d", "org-2", uint8(1), "over", h, "e1"},
		}}
	if err := insert.Insert(ctx, s.Conn, s.DB); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.ScanAtRisk(ctx, "org-1", func(id string) error { got = append(got, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "p-a,p-c" {
		t.Fatalf("at risk %v, want p-a,p-c in id order", got)
	}

	// The stored tiers see the same set.
	rows := []collector.ProjectProgress{
		progressRow("p-a", h.Add(-5*time.Hour), h.Add(-4*time.Hour), h, collector.TierAtRisk), // activity after it: active
		progressRow("p-b", h.Add(-9*time.Hour), time.Time{}, h, collector.TierRolling),
		progressRow("p-c", h.Add(-2*time.Hour), time.Time{}, h, collector.TierAtRisk),
		progressRow("p-old", h.Add(-300*time.Hour), time.Time{}, h.Add(-200*time.Hour), collector.TierRolling), // deleted long ago
	}
	if err := s.WriteProgress(ctx, rows); err != nil {
		t.Fatal(err)
	}
	st, err := s.StoredTiers(ctx, "org-1", h.Add(-168*time.Hour), h.Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := collector.StoredTiers{All: 3, AllOldest: h.Add(-9 * time.Hour), Active: 1, ActiveOldest: h.Add(-5 * time.Hour),
		Closing: 2, ClosingOldest: h.Add(-9 * time.Hour), AtRisk: 2, AtRiskOldest: h.Add(-5 * time.Hour)}
	if st != want {
		t.Fatalf("stored tiers\n got %+v\nwant %+v", st, want)
	}
	st, err = s.StoredTiers(ctx, "org-3", h.Add(-168*time.Hour), time.Time{})
	if err != nil || st != (collector.StoredTiers{}) {
		t.Fatalf("an org without rows: %+v, %v", st, err)
	}
}
