package chstore

import (
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// Statements lists every statement the store runs, with sample arguments, in an order that runs
// on a migrated database: inserts before the reads of the same table. The statement registry
// (schema's golden catalog and its runs on ClickHouse 18.16 and chDB) reads it.
func Statements() []schema.Query {
	from, to, collected, org, projects := schema.SampleFrom, schema.SampleTo, schema.SampleCollected, schema.SampleOrg, schema.SampleProjects()
	hourly := collector.Feed{OrgID: org, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
	return []schema.Query{
		insertFactsQuery([]collector.Fact{
			{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from, Value: 3600,
				PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 1},
			{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from, Value: 7200,
				PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 2},
		}),
		scanStoredQuery(org, projects, []string{"compute_unit_seconds", "root_branch_bytes_month"}, from, to),
		usageTotalsQuery(org, from, to),
		MetricTotalsQuery(org, from, to),

		insertCoarseQuery([]collector.CoarseFact{{OrgID: org, ProjectID: "project-a", Metric: "root_branch_bytes_month",
			Granularity: collector.GranularityDaily, BucketStart: from, BucketEnd: to, Value: 758513664,
			PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 1}}),
		storedCoarseQuery(org, projects, from, to),

		insertRevisionsQuery([]collector.Revision{{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from,
			OldValue: 3600, NewValue: 7200, OldVersion: 1, NewVersion: 2, DetectedAt: collected, RunID: "run-sample"}}),
		revisionsQuery(org, from, to),

		writeRunQuery(collector.Run{RunID: "run-sample", OrgID: org, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
			WindowFrom: from, WindowTo: to, StartedAt: collected, Outcome: collector.OutcomeRunning,
			Host: "collector-host", PID: 4242, DeadlineAt: collected.Add(collector.DefaultDeadline)}),
		runsQuery(from),

		setWatermarkQuery(hourly, to, collected),
		watermarkQuery(hourly),

		writeProgressQuery([]collector.ProjectProgress{{OrgID: org, ProjectID: "project-a", CompleteThrough: to, FinalThrough: from, RereadThrough: from, LastActiveAt: from,
			Tier: collector.TierActive, UpdatedAt: collected, RunID: "run-sample"}}),
		scanProgressQuery(org),
		progressOfQuery(org, projects),
		atRiskQuery(org),
		storedTiersQuery(org, from, to),
		storedAtRiskQuery(org, from),
	}
}
