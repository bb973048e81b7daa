package whatif_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/finance/whatif"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// TestCompare_UnitChangeAndUnknownPlan: a draft billing compute by the CU-second instead of the
// CU-hour re-rates 2 h of 1 CU to 7200 units, named "CU-hour→CU-s"; a plan in force that the
// draft lacks is listed, and its project is neither billed nor judged.
func TestCompare_UnitChangeAndUnknownPlan(t *testing.T) {
	const y = `version: 1
plans:
  - name: free
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4}
    limits:
      compute_unit_seconds: {kind: soft, max: 8000 CU-second}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: %s}
`
	draft := testworld.Catalog(t, fmt.Sprintf(y, "CU-s"))
	tl := accounts.NewTimelines([]accounts.Record{
		{ProjectID: "p1", ValidFrom: period.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"},
		{ProjectID: "p2", ValidFrom: period.AddDate(0, -1, 0), CustomerID: "cus_b", Plan: "legacy"},
	}, "free")
	in := &whatif.Inputs{From: period, To: period.AddDate(0, 1, 0), Timeline: tl, CurrentUnits: map[string]string{"compute_unit_seconds": "CU-hour"},
		Usage: []billing.HourlyUsage{{ProjectID: "p1", Metric: "compute_unit_seconds", Hour: period, Value: 7200},
			{ProjectID: "p2", Metric: "compute_unit_seconds", Hour: period, Value: 9000}},
		Ledger: []billing.LedgerRow{{CustomerID: "cus_a", Target: "neon_compute", Hour: period.Add(time.Hour), Sink: billing.SinkMeter,
			Metric: "compute_unit_seconds", Value: 2, Accounted: 2}},
		Periods: []enforcement.PeriodUsage{{ProjectID: "p1", Metric: "compute_unit_seconds", Sum: 7200, Max: 3600},
			{ProjectID: "p2", Metric: "compute_unit_seconds", Sum: 9000, Max: 9000}}}
	rep, err := whatif.Compare(in, draft, enforcement.DefaultPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := whatif.Line{Plan: "pro", Customer: "cus_a", Measure: "compute_unit_seconds", Unit: "CU-hour→CU-s", Actual: 2, Simulated: 7200, Change: 7198}
	if got := line(rep, "pro", "cus_a", "compute_unit_seconds"); got != want {
		t.Errorf("units: got %+v, want %+v", got, want)
	}
	if got := line(rep, "pro", "cus_a", whatif.MeasureWarned); got.Simulated != 1 || got.Actual != 0 {
		t.Errorf("7200 of 8000 CU-s is a warning: %+v", got)
	}
	if !slices.Equal(rep.UnknownPlans, []string{"legacy"}) {
		t.Errorf("unknown plans %v", rep.UnknownPlans)
	}
	for _, l := range rep.Lines {
		if l.Customer == "cus_b" {
			t.Errorf("a project on a plan the draft lacks is billed or judged: %+v", l)
		}
	}
}
