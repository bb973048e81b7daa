package whatif_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/finance/whatif"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/neon"
)

// BenchmarkSimulate300k times plans simulate of one month for 300,000 projects with usage
// (two metrics, four hours each spread over the month: 2.4 million facts inserted in bulk), a
// customer per five projects, 1 % of the projects changing plan mid-month (read hour by hour),
// under a draft with the free tier halved. Goal: under a minute.
//
//	go test -run '^$' -bench BenchmarkSimulate300k -benchtime 1x ./finance/whatif/
func BenchmarkSimulate300k(b *testing.B) {
	const n = 300_000
	conn, db := chtest.New(b)
	ctx := context.Background()
	facts := make([]collector.Fact, 0, 8*n/4)
	for i := range n {
		id := fmt.Sprintf("bench-project-%07d", i)
		for k := range 4 {
			hour := period.Add(time.Duration((i+k*181)%720) * time.Hour)
			for _, m := range []string{neon.MetricComputeUnitSeconds, neon.MetricPublicNetworkTransferBytes} {
				facts = append(facts, collector.Fact{OrgID: "org-bench", ProjectID: id, Metric: m, Hour: hour,
					Value: uint64(i%5000) * 40, PeriodID: "p", PeriodPlan: "scale", CollectedAt: pushAt, Version: 1})
			}
		}
		if len(facts) >= 400_000 || i == n-1 {
			testworld.Seed(b, conn, db, testworld.Rows{Facts: facts})
			facts = facts[:0]
		}
	}
	var recs []accounts.Record
	for i := range n {
		id := fmt.Sprintf("bench-project-%07d", i)
		plan := []string{"free", "pro"}[(i/5)%2]
		recs = append(recs, accounts.Record{ProjectID: id, ValidFrom: period.AddDate(0, -1, 0), CustomerID: fmt.Sprintf("cus_bench_%06d", i/5),
			Plan: plan, Source: accounts.SourceCSV, Basis: accounts.BasisImported, RecordedAt: pushAt, RunID: "bench", Version: 1})
		if i%100 == 0 {
			recs = append(recs, accounts.Record{ProjectID: id, ValidFrom: period.Add(15 * 24 * time.Hour), CustomerID: fmt.Sprintf("cus_bench_%06d", i/5),
				Plan: "pro", Source: accounts.SourceCSV, Basis: accounts.BasisImported, RecordedAt: pushAt, RunID: "bench", Version: 1})
		}
	}
	testworld.Seed(b, conn, db, testworld.Rows{Accounts: recs})
	cfg := config(conn, db, testworld.Catalog(b, catalogYAML(60_000, 100_000)), testworld.Catalog(b, catalogYAML(30_000, 100_000)))
	b.ResetTimer()
	for b.Loop() {
		rep, err := whatif.Simulate(ctx, cfg, period)
		if err != nil {
			b.Fatal(err)
		}
		if l := line(rep, "free", whatif.AllCustomers, whatif.MeasureSuspended); l.Simulated <= l.Actual || l.Simulated == 0 {
			b.Fatalf("free suspended: %+v", l)
		}
	}
}
