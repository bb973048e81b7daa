package schema_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestDropExpiredPartitions(t *testing.T) {
	conn, db := chtest.New(t)
	months := []time.Time{
		time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
	}
	var (
		facts  []collector.Fact
		coarse []collector.CoarseFact
		revs   []collector.Revision
	)
	for _, h := range months {
		facts = append(facts, fact("p1", "m", h, 1, 1), fact("p2", "m", h, 2, 1))
		day := h.Truncate(24 * time.Hour)
		coarse = append(coarse, collector.CoarseFact{OrgID: "org-1", ProjectID: "p1", Metric: "m", Granularity: collector.GranularityDaily,
			BucketStart: day, BucketEnd: day.Add(24 * time.Hour), Value: 1, Version: 1})
		revs = append(revs, collector.Revision{OrgID: "org-1", ProjectID: "p1", Metric: "m", Hour: h, OldVersion: 1, NewVersion: 2})
	}
	store := collectorstore.New(conn, db)
	if err := store.InsertFacts(t.Context(), facts); err != nil {
		t.Fatalf("insert facts: %v", err)
	}
	if err := store.InsertCoarseFacts(t.Context(), coarse); err != nil {
		t.Fatalf("insert coarse: %v", err)
	}
	if err := store.InsertRevisions(t.Context(), revs); err != nil {
		t.Fatalf("insert revisions: %v", err)
	}
	// A run row: collection tables are not trimmed.
	if err := store.WriteRun(t.Context(), startRun("run-old", months[0])); err != nil {
		t.Fatalf("write run: %v", err)
	}

	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	if _, err := schema.DropExpiredPartitions(t.Context(), conn, db, 0, now); err == nil {
		t.Fatalf("keep 0 months: want an error")
	}
	dropped, err := schema.DropExpiredPartitions(t.Context(), conn, db, 25, now)
	if err != nil {
		t.Fatalf("drop: %v", err)
	}
	want := []string{
		"usage_coarse/202312", "usage_coarse/202401",
		"usage_facts/202312", "usage_facts/202401",
		"usage_revisions/202312", "usage_revisions/202401",
	}
	if !reflect.DeepEqual(dropped, want) {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	for table, wantRows := range map[string]uint64{"usage_facts": 4, "usage_coarse": 2, "usage_revisions": 2, "collection_runs": 1} {
		if n := chtest.Count(t, conn, "SELECT count() FROM "+db+"."+table); n != wantRows {
			t.Errorf("%s has %d rows, want %d", table, n, wantRows)
		}
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".usage_facts WHERE hour < '2024-02-01 00:00:00'"); n != 0 {
		t.Errorf("usage_facts still has %d expired rows", n)
	}

	again, err := schema.DropExpiredPartitions(t.Context(), conn, db, 25, now)
	if err != nil || len(again) != 0 {
		t.Fatalf("second drop = %v, %v; want nothing", again, err)
	}
	// Keeping one month on 2026-03-15 drops every month before February 2026.
	dropped, err = schema.DropExpiredPartitions(t.Context(), conn, db, 1, now)
	if err != nil {
		t.Fatalf("drop keeping 1 month: %v", err)
	}
	if got := strings.Join(dropped, ","); got != "usage_coarse/202402,usage_facts/202402,usage_revisions/202402" {
		t.Fatalf("dropped %s", got)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".usage_hourly"); n != 2 {
		t.Fatalf("usage_hourly has %d rows, want the 2 of March", n)
	}
}
