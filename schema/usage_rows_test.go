package schema_test

import (
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// Usage rows for schema's tests of the shared tables (retention, the data model doc, the
// registry). The collector owns these rows; its store writes them.

func fact(project, metric string, hour time.Time, value, version uint64) collector.Fact {
	return collector.Fact{OrgID: "org-1", ProjectID: project, Metric: metric, Hour: hour, Value: value,
		PeriodID: "period-1", PeriodPlan: "scale", CollectedAt: hour.Add(2 * time.Hour), Version: version}
}

func startRun(id string, started time.Time) collector.Run {
	return collector.Run{RunID: id, OrgID: "org-1", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
		WindowFrom: started.Add(-48 * time.Hour).Truncate(time.Hour), WindowTo: started.Truncate(time.Hour),
		StartedAt: started, Outcome: collector.OutcomeRunning}
}
