package chstore

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// TestUsage_WrappedSumsRefused: sum(UInt64) wraps on ClickHouse 18.16. Three org rows of one
// project-hour near int64 max sum past 2^64 and wrap to a plausible 2^63 − 3; three such hours
// wrap a stretch total the same way. The reads refuse both with an error naming the project,
// metric and hour instead of returning the wrapped number; other rows still read as before.
func TestUsage_WrappedSumsRefused(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	// Written straight to the table: data that got past (or predates) the collector's bounds.
	batch, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	big := uint64(math.MaxInt64)
	rows := []struct {
		org, project string
		hour         time.Time
		value        uint64
	}{
		{"org-a", "p1", h0, big}, {"org-b", "p1", h0, big}, {"org-c", "p1", h0, big}, // one hour, three orgs
		{"org-a", "p2", h0, big}, {"org-a", "p2", h0.Add(time.Hour), big}, {"org-a", "p2", h0.Add(2 * time.Hour), big}, // three hours
		{"org-a", "p3", h0, 3600},
	}
	for _, r := range rows {
		if err := batch.Append(r.org, r.project, cus, r.hour, r.value, "", "", now, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	metrics := []string{cus}
	_, err = s.UsageOf(ctx, metrics, []string{"p1"}, h0, h0.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "project p1") || !strings.Contains(err.Error(), cus) || !strings.Contains(err.Error(), h0.Format(time.RFC3339)) {
		t.Fatalf("hour summed over orgs past 2^64: err %v, want one naming project p1, %s and %s", err, cus, h0.Format(time.RFC3339))
	}
	if _, err := s.Usage(ctx, metrics, h0, h0.Add(time.Hour)); err == nil {
		t.Fatal("Usage returned a wrapped sum")
	}
	_, err = s.UsageTotals(ctx, metrics, h0.Add(-time.Hour), h0.Add(3*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "project p1") && !strings.Contains(err.Error(), "project p2") {
		t.Fatalf("stretch total past 2^64: err %v", err)
	}
	got, err := s.UsageOf(ctx, metrics, []string{"p3"}, h0, h0.Add(3*time.Hour))
	if err != nil || len(got) != 1 || got[0].Value != 3600 {
		t.Fatalf("a sane project reads %+v, err %v", got, err)
	}
}
