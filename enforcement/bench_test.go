package enforcement_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// BenchmarkPlan300k times what a cycle does before reading Neon, for 300,000 projects with usage
// this period: the one fleet-wide usage query, accounts, watermarks and states (Load), then
// Evaluate of every project. Goal: under 5 s.
//
//	go test -run '^$' -bench BenchmarkPlan300k -benchtime 3x ./enforcement/
func BenchmarkPlan300k(b *testing.B) {
	const n = 300_000
	conn, db := chtest.New(b)
	ctx := context.Background()
	hour := plans.PeriodStart(testNow).Add(time.Hour)
	facts := make([]collector.Fact, 0, 2*n)
	for i := range n {
		id := fmt.Sprintf("bench-project-%07d", i)
		for _, m := range []string{neon.MetricComputeUnitSeconds, neon.MetricPublicNetworkTransferBytes} {
			facts = append(facts, collector.Fact{OrgID: "org-bench", ProjectID: id, Metric: m, Hour: hour, Value: uint64(i % 5000),
				PeriodID: "p", PeriodPlan: "scale", CollectedAt: testNow, Version: 1})
		}
	}
	cs := collectorstore.New(conn, db)
	if err := cs.InsertFacts(ctx, facts); err != nil {
		b.Fatal(err)
	}
	hourly := collector.Feed{OrgID: "org-bench", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
	if err := cs.SetWatermark(ctx, hourly, testNow.Truncate(time.Hour), testNow); err != nil {
		b.Fatal(err)
	}
	cat := catalog(b, 4000, 4000, 4000, 4000)
	r, err := enforcement.New(enforcement.Config{Neon: nopNeon{}, Store: chstore.New(conn, db), Accounts: accountsstore.New(conn, db), Catalog: cat,
		DefaultPlan: "free", Policy: enforcement.DefaultPolicy(), Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ev, err := r.Load(ctx, testNow)
		if err != nil {
			b.Fatal(err)
		}
		over := 0
		for _, d := range ev.Projects {
			if v := enforcement.Evaluate(*d, enforcement.DefaultPolicy(), testNow); v.Level == enforcement.LevelOver {
				over++
			}
		}
		if len(ev.Projects) != n || over == 0 {
			b.Fatalf("%d projects, %d over", len(ev.Projects), over)
		}
	}
}

// nopNeon is never called: planning does not read Neon.
type nopNeon struct{ enforcement.Neon }
