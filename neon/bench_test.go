package neon_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// BenchmarkDecodeV2Page decodes a v2 page of 100 projects × 72 h × 8 metrics (~9 % of the
// buckets are zero and omitted, as Neon omits them) and reports metric values per second.
func BenchmarkDecodeV2Page(b *testing.B) {
	q := hourlyQuery("org-bench", 72)
	benchDecode(b, func(body []byte) error {
		_, err := neon.DecodeConsumptionForTest(body, q, false)
		return err
	})
}

// BenchmarkDecodeV2PageStdlib decodes the same page with encoding/json into structs of the
// page's shape, without any of the decoder's checks: the floor an encoding/json decoder would
// cost, for docs/benchmarks.md.
func BenchmarkDecodeV2PageStdlib(b *testing.B) {
	benchDecode(b, func(body []byte) error {
		var p sim.V2Page
		return json.Unmarshal(body, &p)
	})
}

func benchDecode(b *testing.B, decode func(body []byte) error) {
	body := buildPage(pageSpec{projects: 100, hours: 72, metrics: neon.V2Metrics()})
	page, err := neon.DecodeConsumptionForTest(body, hourlyQuery("org-bench", 72), false)
	if err != nil {
		b.Fatal(err)
	}
	values := 0
	for _, p := range page.Projects {
		for _, per := range p.Periods {
			for _, tf := range per.Consumption {
				values += len(tf.Metrics)
			}
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(float64(values), "values/page")
}

// BenchmarkPaceAtServerRate reads consumption pages from a simulator that allows exactly the
// client's configured rate, burst 1 on both sides (scripts/bench-collect.sh with a rate, in
// miniature). The pace margin keeps every request from landing early: no 429. It reports the
// wall time over the floor of (requests − 1) server intervals, and the retries.
func BenchmarkPaceAtServerRate(b *testing.B) {
	const perMin, pages = 120, 8
	for b.Loop() {
		s, _, base := simServer(b, sim.Config{Projects: 500, Seed: 5, Now: testclock.New(simNow).Now, ConsumptionRatePerMin: perMin, ConsumptionBurst: 1})
		cfg := testConfig(base)
		cfg.ConsumptionRatePerMin, cfg.ConsumptionBurst = perMin, 1
		c := newClient(b, cfg)
		org := orgByPlan(b, s, "launch", false)
		to := simNow.Truncate(time.Hour)
		q := neon.ConsumptionQuery{OrgID: org.ID, From: to.Add(-2 * time.Hour), To: to, Granularity: neon.GranularityHourly,
			Limit: (len(org.ProjectIDs) + pages - 1) / pages}
		start := time.Now()
		if _, err := collect(c.ConsumptionV2(context.Background(), q)); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		requests := s.Stats().ConsumptionRequests
		floor := time.Duration(requests-1) * time.Minute / perMin
		b.ReportMetric(float64(requests), "requests")
		b.ReportMetric(elapsed.Seconds()/floor.Seconds(), "x_floor")
		b.ReportMetric(float64(c.Stats().Retries), "retries")
	}
}
