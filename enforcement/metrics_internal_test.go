package enforcement

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The projects gauge counts the whole fleet: projects not in the report are ok and normal.
func TestMetrics_ProjectsCountTheWholeFleet(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.observeCycle(&Report{Fleet: 10, FleetByPlan: map[string]int{"free": 6, "pro": 4}, Rows: []Row{
		{ProjectID: "a", Plan: "free", Level: LevelOver, Status: StatusSuspended},
		{ProjectID: "b", Plan: "pro", Level: LevelWarning, Status: StatusNormal},
	}})
	want := `
# HELP neonmeter_enforcement_projects Projects by plan, level (ok, warning, over) and status (normal, throttled, suspended, released) after the last cycle.
# TYPE neonmeter_enforcement_projects gauge
neonmeter_enforcement_projects{level="ok",plan="free",status="normal"} 5
neonmeter_enforcement_projects{level="ok",plan="pro",status="normal"} 3
neonmeter_enforcement_projects{level="over",plan="free",status="suspended"} 1
neonmeter_enforcement_projects{level="warning",plan="pro",status="normal"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "neonmeter_enforcement_projects"); err != nil {
		t.Fatal(err)
	}
}
