package chstore

import (
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// Statements lists every statement of enforcement with sample arguments, inserts before the
// reads of the same table, for the registry (schema/registry_test.go): the golden catalog and
// the runs on ClickHouse 18.16 and chDB.
func Statements() []schema.Query {
	from, to, collected := schema.SampleFrom, schema.SampleTo, schema.SampleCollected
	return []schema.Query{
		usageSinceQuery(from, to),
		hourlyWatermarksQuery(),
		progressQuery(),
		writeStatesQuery([]enforcement.State{{ProjectID: "project-a", PeriodStart: from, Plan: "free", Level: enforcement.LevelOver,
			OverSince: from.Add(3 * time.Hour), Seen: enforcement.Seen{Applied: "suspend q=1,90000,0,0 d=0.25,0.25,300", ObservedAt: collected,
				Prior: "q=0,0,0,0,0 d=0.25,2,0 e=ep-a:0.25:2", IdleOverMax: 1}, UpdatedAt: collected, Version: 1}}),
		statesQuery(),
		insertAuditQuery([]enforcement.AuditRecord{{At: collected, CycleID: "cycle-sample", ProjectID: "project-a", Plan: "free",
			Metric: "compute_unit_seconds", Usage: 7200, Limit: 3600, Level: enforcement.LevelOver, Action: "set_project", Reason: "suspend",
			Mode: enforcement.ModeEnforce, Before: "q=0,0,0,0", After: "q=1,0,0,0", OperationIDs: []string{"op-1"}, Outcome: enforcement.OutcomeApplied}}),
		auditOfQuery("project-a", 20),
		insertBreakerEventQuery(enforcement.BreakerEvent{At: collected, Kind: enforcement.BreakerTripped, CycleID: "cycle-sample",
			Enforcing: 120, Cap: 100, Version: 1}),
		lastBreakerEventQuery(),
		writeAtRiskQuery([]enforcement.AtRiskRow{{ProjectID: "project-a", OrgID: "org-a", AtRisk: true, Reason: "over compute_unit_seconds",
			UpdatedAt: collected, RunID: "cycle-sample"}}),
		atRiskSetQuery(),
	}
}
