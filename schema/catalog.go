package schema

import "time"

// The statement registry: every SQL statement of the product except the migration files' own
// (see Migrations), each with sample arguments, in an order that runs on a migrated database:
// inserts come before the reads of the same table. The registry in registry_test.go joins
// schema's lists with each stage's; tests print it to a golden file and run every statement on
// ClickHouse 18.16 and on current ClickHouse (chDB). A new statement belongs in its owner's list.

// Sample values shared by the registry's statements, so reads find what the inserts wrote.
var (
	sampleFrom      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sampleTo        = sampleFrom.Add(24 * time.Hour)
	sampleCollected = sampleFrom.Add(26 * time.Hour)
)

const sampleOrg = "org-sample"

var sampleProjects = []string{"project-a", "project-b"}

// MigrationStatements lists the statements migrate runs besides the migration files.
func MigrationStatements() []Query {
	collected := sampleCollected
	return []Query{
		createDatabaseQuery(),
		createMigrationsTableQuery(),
		recordMigrationQuery(Migration{Version: 9999, Name: "catalog_sample", Checksum: "0"}, collected),
		appliedMigrationsQuery(),
		columnExistsQuery("usage_facts", "value"),
	}
}

// CollectorStatements lists the collector's statements.
func CollectorStatements() []Query {
	from, to, collected, org, projects := sampleFrom, sampleTo, sampleCollected, sampleOrg, sampleProjects
	return []Query{
		insertFactsQuery([]Fact{
			{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from, Value: 3600,
				PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 1},
			{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from, Value: 7200,
				PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 2},
		}),
		scanStoredQuery(org, projects, []string{"compute_unit_seconds", "root_branch_bytes_month"}, from, to),
		usageTotalsQuery(org, from, to),
		MetricTotalsQuery(org, from, to),

		insertCoarseQuery([]CoarseFact{{OrgID: org, ProjectID: "project-a", Metric: "root_branch_bytes_month",
			Granularity: GranularityDaily, BucketStart: from, BucketEnd: to, Value: 758513664,
			PeriodID: "period-1", PeriodPlan: "launch", CollectedAt: collected, Version: 1}}),
		storedCoarseQuery(org, projects, from, to),

		insertRevisionsQuery([]Revision{{OrgID: org, ProjectID: "project-a", Metric: "compute_unit_seconds", Hour: from,
			OldValue: 3600, NewValue: 7200, OldVersion: 1, NewVersion: 2, DetectedAt: collected, RunID: "run-sample"}}),
		revisionsQuery(org, from, to),

		writeRunQuery(Run{RunID: "run-sample", OrgID: org, Endpoint: EndpointV2, Granularity: GranularityHourly,
			WindowFrom: from, WindowTo: to, StartedAt: collected, Outcome: OutcomeRunning}),
		runsQuery(from),

		setWatermarkQuery(org, EndpointV2, GranularityHourly, to, collected),
		watermarkQuery(org, EndpointV2, GranularityHourly),
	}
}

// AccountsStatements lists the accounts stage's statements.
func AccountsStatements() []Query {
	from, to, collected, projects := sampleFrom, sampleTo, sampleCollected, sampleProjects
	return []Query{
		insertAccountChangesQuery([]AccountChange{
			{ProjectID: "project-a", ValidFrom: from.Add(-24 * time.Hour), CustomerID: "cus_sample", Plan: "free", Source: AccountSourceStripe,
				SubscriptionID: "sub_sample", Basis: "subscription_start", RecordedAt: collected, RunID: "run-sample", Version: 1},
			{ProjectID: "project-a", ValidFrom: from.Add(14 * time.Hour), CustomerID: "cus_sample", Plan: "pro", Source: AccountSourceStripe,
				SubscriptionID: "sub_sample", Basis: "item_created", RecordedAt: collected, RunID: "run-sample", Version: 1},
			{ProjectID: "project-b", ValidFrom: from, CustomerID: "cus_other", Plan: "enterprise", Source: AccountSourceCSV,
				Basis: "imported", RecordedAt: collected, RunID: "run-sample", Version: 1},
		}),
		accountsAtQuery(projects, false, from.Add(13*time.Hour)),
		accountsAtQuery(nil, true, from.Add(14*time.Hour)),
		accountHistoryQuery(projects, false, to),
		accountHistoryQuery(nil, true, to),
		usageProjectsQuery(from, to),
	}
}

// BillingStatements lists billing's statements.
func BillingStatements() []Query {
	from, to, collected, projects := sampleFrom, sampleTo, sampleCollected, sampleProjects
	return []Query{
		billingUsageQuery([]string{"compute_unit_seconds", "written_data_bytes"}, from, to),
		billingTotalsQuery([]string{"compute_unit_seconds", "written_data_bytes"}, from, to),
		billingUsageOfQuery([]string{"compute_unit_seconds"}, projects, from, to),
		insertLedgerQuery([]LedgerRow{
			{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: SinkMeter, Metric: "compute_unit_seconds",
				Value: 2, Revision: 1, Identifier: "nm1-sample", Status: LedgerIntent, RecordedAt: collected, RunID: "run-sample", Version: 2},
			{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: SinkMeter, Metric: "compute_unit_seconds",
				Value: 2, ConfirmedValue: 2, Revision: 1, Identifier: "nm1-sample", Status: LedgerPushed, StripeID: "mtr_evt_sample",
				RequestID: "req_sample", HTTPStatus: 200, RecordedAt: collected, RunID: "run-sample", Version: 3},
		}),
		ledgerQuery(from, to),
		insertLateQuery([]LateAdjustment{{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: SinkMeter, Revision: 2,
			Metric: "compute_unit_seconds", PeriodStart: from, PeriodEnd: from.AddDate(0, 1, 0), OldValue: 2, NewValue: 3, Amount: 1,
			Reason: LateFinalized, DetectedAt: collected, RunID: "run-sample"}}),
		lateQuery(from, to),
		insertDriftQuery([]Drift{{CheckedAt: collected, RunID: "run-sample", CustomerID: "cus_sample", Target: "neon_compute",
			Sink: SinkMeter, Bucket: from, Expected: 2, Actual: 1, Drift: -1}}),
		driftQuery("run-sample"),
	}
}

// EnforcementStatements lists enforcement's statements.
func EnforcementStatements() []Query {
	from, to, collected := sampleFrom, sampleTo, sampleCollected
	return []Query{
		usageSinceQuery(from, to),
		hourlyWatermarksQuery(),
		writeEnforcementStatesQuery([]EnforcementState{{ProjectID: "project-a", PeriodStart: from, Plan: "free", Level: "over",
			OverSince: from.Add(3 * time.Hour), Applied: "suspend q=1,90000,0,0 d=0.25,0.25,300", ObservedAt: collected,
			UpdatedAt: collected, Version: 1}}),
		enforcementStatesQuery(),
		insertAuditQuery([]AuditRecord{{At: collected, CycleID: "cycle-sample", ProjectID: "project-a", Plan: "free",
			Metric: "compute_unit_seconds", Usage: 7200, Limit: 3600, Level: "over", Action: "set_project", Reason: "suspend",
			Mode: "enforce", Before: "q=0,0,0,0", After: "q=1,0,0,0", OperationIDs: []string{"op-1"}, Outcome: "applied"}}),
		auditOfQuery("project-a", 20),
	}
}

// RetentionStatements lists the retention job's statements.
func RetentionStatements() []Query {
	return []Query{
		listPartitionsQuery(),
		dropPartitionQuery("usage_coarse", 202001),
		dropPartitionQuery("usage_facts", 202001),
		dropPartitionQuery("usage_revisions", 202001),
	}
}
