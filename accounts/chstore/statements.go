package chstore

import (
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/schema"
)

// Statements lists the accounts stage's statements with sample arguments, for the registry's
// golden file and its runs on ClickHouse 18.16 and chDB.
func Statements() []schema.Query {
	from, to, collected, projects := schema.SampleFrom, schema.SampleTo, schema.SampleCollected, schema.SampleProjects()
	return []schema.Query{
		insertQuery([]accounts.Record{
			{ProjectID: "project-a", ValidFrom: from.Add(-24 * time.Hour), CustomerID: "cus_sample", Plan: "free", Source: accounts.SourceStripe,
				SubscriptionID: "sub_sample", Basis: accounts.BasisSubscriptionStart, RecordedAt: collected, RunID: "run-sample", Version: 1},
			{ProjectID: "project-a", ValidFrom: from.Add(14 * time.Hour), CustomerID: "cus_sample", Plan: "pro", Source: accounts.SourceStripe,
				SubscriptionID: "sub_sample", Basis: accounts.BasisItemCreated, RecordedAt: collected, RunID: "run-sample", Version: 1},
			{ProjectID: "project-b", ValidFrom: from, CustomerID: "cus_other", Plan: "enterprise", Source: accounts.SourceCSV,
				Basis: accounts.BasisImported, RecordedAt: collected, RunID: "run-sample", Version: 1},
		}),
		atQuery(projects, false, from.Add(13*time.Hour)),
		atQuery(nil, true, from.Add(14*time.Hour)),
		historyQuery(projects, false, to),
		historyQuery(nil, true, to),
		usageProjectsQuery(from, to),
	}
}
