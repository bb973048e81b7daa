package neon_test

import (
	"testing"

	"github.com/neonmeter/neonmeter/neon"
)

// BenchmarkDecodeV2Page decodes a v2 page of 100 projects × 72 h × 8 metrics (~9 % of the
// buckets are zero and omitted, as Neon omits them) and reports metric values per second.
func BenchmarkDecodeV2Page(b *testing.B) {
	body := buildPage(pageSpec{projects: 100, hours: 72, metrics: neon.V2Metrics()})
	q := hourlyQuery("org-bench", 72)
	page, err := neon.DecodeConsumptionForTest(body, q, false)
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
		if _, err := neon.DecodeConsumptionForTest(body, q, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(float64(values), "values/page")
}
