package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// BenchmarkPush_Rate pushes one value for each of N customers (of a 50,000-customer ledger
// setup, bounded by -benchtime's request count) through the fake at a configured rate and
// reports the achieved requests/s against it, and requests per changed value.
// go test ./billing/ -run '^$' -bench Push_Rate -benchtime 1x
func BenchmarkPush_Rate(b *testing.B) {
	for _, tc := range []struct {
		rate     float64
		requests int
	}{{50, 1000}, {500, 5000}} {
		b.Run(fmt.Sprintf("rate=%v", tc.rate), func(b *testing.B) {
			conn, db := chtest.New(b)
			st := testworld.NewStripe(b, testNow)
			cat := testCatalog(b)
			st.Setup(b, cat)
			// 50,000 customers, each with one project and one hour of compute; the pusher
			// runs with a lookback of one hour, so each value is one request.
			const customers = 50_000
			hour := testNow.Add(-3 * time.Hour).Truncate(time.Hour)
			var changes []accounts.Record
			var facts []collector.Fact
			for i := range customers {
				cus := fmt.Sprintf("cus_idle%06d", i) // customers without usage send nothing
				if i < tc.requests {
					cus = st.Customer(b, "")
				}
				p := fmt.Sprintf("proj-%06d", i)
				changes = append(changes, accounts.Record{ProjectID: p, ValidFrom: hour.AddDate(0, 0, -1), CustomerID: cus, Plan: "pro",
					Source: accounts.SourceCSV, Basis: accounts.BasisImported, RecordedAt: testNow, Version: 1})
				if i < tc.requests {
					facts = append(facts, collector.Fact{OrgID: "org", ProjectID: p, Metric: "compute_unit_seconds", Hour: hour, Value: 3600 * uint64(1+i%5),
						CollectedAt: testNow, Version: 1})
				}
			}
			testworld.Seed(b, conn, db, testworld.Rows{Accounts: changes, Facts: facts})
			st.Fake.ResetRequests()
			p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(st.Client), Store: billingstore.New(conn, db), Accounts: accountsstore.New(conn, db),
				Catalog: cat, DefaultPlan: "free",
				Lookback: 4 * time.Hour, Provisional: 2 * time.Hour, Rate: tc.rate, Concurrency: 16, Now: func() time.Time { return testNow }})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			res, err := p.Push(context.Background(), false)
			elapsed := time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if res.Requests != tc.requests {
				b.Fatalf("%d requests for %d changed values", res.Requests, tc.requests)
			}
			b.ReportMetric(float64(res.Requests)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(res.Requests)/elapsed.Seconds()/tc.rate, "of-rate")
			b.ReportMetric(float64(res.Requests)/float64(tc.requests), "req/changed")
		})
	}
}

// BenchmarkPush_FirstPush24k is a first push at the default pace and concurrency: 1,000
// customers × 24 hours of one meter = 24,000 meter events through the fake (which answers in
// well under a millisecond, so the pace is what limits). At DefaultRate (500/s) it takes 48 s;
// at the old default of 50/s it took 8 min.
// go test ./billing/ -run '^$' -bench FirstPush24k -benchtime 1x
func BenchmarkPush_FirstPush24k(b *testing.B) {
	const customers, hours = 1000, 24
	conn, db := chtest.New(b)
	st := testworld.NewStripe(b, testNow)
	cat := testCatalog(b)
	ctx := context.Background()
	st.Setup(b, cat)
	to := testNow.Add(-2 * time.Hour).Truncate(time.Hour)
	var changes []accounts.Record
	var facts []collector.Fact
	for i := range customers {
		p := fmt.Sprintf("proj-%06d", i)
		changes = append(changes, accounts.Record{ProjectID: p, ValidFrom: to.AddDate(0, 0, -3), CustomerID: st.Customer(b, ""), Plan: "pro",
			Source: accounts.SourceCSV, Basis: accounts.BasisImported, RecordedAt: testNow, Version: 1})
		for h := range hours {
			facts = append(facts, collector.Fact{OrgID: "org", ProjectID: p, Metric: "compute_unit_seconds", Hour: to.Add(-time.Duration(h+1) * time.Hour),
				Value: 3600, CollectedAt: testNow, Version: 1})
		}
	}
	testworld.Seed(b, conn, db, testworld.Rows{Accounts: changes, Facts: facts})
	p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(st.Client), Store: billingstore.New(conn, db), Accounts: accountsstore.New(conn, db),
		Catalog: cat, DefaultPlan: "free", Lookback: (hours + 2) * time.Hour, Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	st.Fake.ResetRequests()
	b.ResetTimer()
	start := time.Now()
	res, err := p.Push(ctx, false)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Pushed != customers*hours || res.Requests != customers*hours {
		b.Fatalf("%d requests, %d pushed; want %d each", res.Requests, res.Pushed, customers*hours)
	}
	b.ReportMetric(elapsed.Seconds(), "s/push")
	b.ReportMetric(float64(res.Requests)/elapsed.Seconds(), "req/s")
}
