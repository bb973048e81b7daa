package collector_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// benchProjects is the fleet size of BenchmarkSweep; NEONMETER_BENCH_PROJECTS overrides it.
func benchProjects(b *testing.B) int {
	if v := os.Getenv("NEONMETER_BENCH_PROJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("NEONMETER_BENCH_PROJECTS: %v", err)
		}
		return n
	}
	return 10_000
}

// BenchmarkSweep measures end-to-end collection (fetch → decode → diff → insert) of 72 h of
// every org with consumption history, against an unthrottled simulator over HTTP and the real
// ClickHouse, into an empty database each iteration.
func BenchmarkSweep(b *testing.B) {
	n := benchProjects(b)
	f := testfleet.New(b, testfleet.Options{Projects: n})
	s, clk, conn := f.Sim, f.Clock.Now, f.Conn
	// Unthrottled: the benchmark measures the collector, not the pacing.
	client := f.NewClient(b, func(c *neon.Config) {
		c.ConsumptionRatePerMin, c.ConsumptionBurst, c.GeneralRatePerMin = 1e9, 1000, 1e9
	})
	to := clk().Truncate(time.Hour)
	w := collector.Window{From: to.Add(-72 * time.Hour), To: to}
	var values, rows int64
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := chtest.Database(b, conn)
		if _, err := schema.Migrate(context.Background(), conn, db, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for _, org := range s.Orgs() {
			if org.Plan == "free" {
				continue
			}
			ep := collector.EndpointV2
			if org.Legacy {
				ep = collector.EndpointLegacy
			}
			c, err := collector.New(collector.Config{Consumption: client, Store: collectorstore.New(conn, db),
				OrgID: org.ID, Endpoint: ep, Lookback: 72 * time.Hour, Now: clk})
			if err != nil {
				b.Fatal(err)
			}
			sum, err := c.Sweep(context.Background(), w)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(os.Stderr, "org %s: %d values in %v (fetch wait %v, store read %v, store write %v)\n",
				org.ID, sum.ValuesFetched, sum.Duration, sum.FetchWait, sum.StoreRead, sum.StoreWrite)
			values += sum.ValuesFetched
			rows += sum.RowsWritten
		}
		elapsed += time.Since(start)
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(values)/elapsed.Seconds(), "values/s")
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
	fmt.Fprintf(os.Stderr, "BenchmarkSweep: %d projects, %d values in %v\n", n, values, elapsed)
}
