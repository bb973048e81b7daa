package schema_test

import (
	"strings"
	"testing"
	"time"

	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
)

func TestQuery_Literal(t *testing.T) {
	q := collectorstore.MetricTotalsQuery("org-'x'", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	got, err := q.Literal("neonmeter")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM neonmeter.usage_hourly", `org_id = 'org-\'x\''`, "hour >= toDateTime('2026-11-01 00:00:00', 'UTC')"} {
		if !strings.Contains(got, want) {
			t.Errorf("literal SQL lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "?") {
		t.Errorf("placeholders left:\n%s", got)
	}
}
