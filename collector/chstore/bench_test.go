package chstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/collector/chstore"
)

// metrics are Neon's eight v2 consumption metrics.
func metrics() []string {
	return []string{"compute_unit_seconds", "root_branch_bytes_month", "child_branch_bytes_month",
		"instant_restore_bytes_month", "snapshot_storage_bytes_month", "public_network_transfer_bytes",
		"private_network_transfer_bytes", "extra_branches_month"}
}

// page builds what one collector page yields: projects × 8 metrics × hours facts.
func page(projects, hours int, version uint64) ([]collector.Fact, []string) {
	start := day0()
	ids := make([]string, projects)
	facts := make([]collector.Fact, 0, projects*hours*8)
	for p := range projects {
		ids[p] = fmt.Sprintf("project-%05d", p)
		for _, m := range metrics() {
			for h := range hours {
				facts = append(facts, fact(ids[p], m, start.Add(time.Duration(h)*time.Hour), uint64(p*h+1), version))
			}
		}
	}
	return facts, ids
}

// BenchmarkInsertFacts inserts one page of 100 projects × 8 metrics × 48 hours (38,400 rows).
func BenchmarkInsertFacts(b *testing.B) {
	store := newTestStore(b)
	facts, _ := page(100, 48, 1)
	i := 0
	for ; b.Loop(); i++ {
		for j := range facts {
			facts[j].Version = uint64(i + 1)
		}
		if err := store.InsertFacts(b.Context(), facts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(facts)*i)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkStoredFacts reads back one page's stored facts (38,400 keys) from a table holding
// two versions of each, as the collector does.
func BenchmarkStoredFacts(b *testing.B) {
	store := newTestStore(b)
	facts, ids := page(100, 48, 1)
	for v := uint64(1); v <= 2; v++ {
		for j := range facts {
			facts[j].Version = v
		}
		if err := store.InsertFacts(b.Context(), facts); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		err := store.ScanStoredFacts(b.Context(), "org-1", ids, metrics(), day0(), day0().Add(48*time.Hour), func(chstore.StoredValue) { n++ })
		if err != nil || n < len(facts) {
			b.Fatalf("stored facts: %d versions read for %d facts, %v", n, len(facts), err)
		}
	}
}

// BenchmarkUsageTotals sums a week of 200 projects (268,800 hourly facts) through usage_hourly.
func BenchmarkUsageTotals(b *testing.B) {
	store := newTestStore(b)
	facts, _ := page(200, 168, 1)
	if err := store.InsertFacts(b.Context(), facts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if got := store.UsageTotals(b, "org-1", day0(), day0().Add(168*time.Hour)); len(got) != 200*8 {
			b.Fatalf("usage totals: %d, want %d", len(got), 200*8)
		}
	}
}
