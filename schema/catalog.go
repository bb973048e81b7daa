package schema

import "time"

// The statement registry: every SQL statement of the product except the migration files' own
// (see Migrations), each with sample arguments, in an order that runs on a migrated database:
// inserts come before the reads of the same table. The registry in registry_test.go joins
// schema's lists with each stage's; tests print it to a golden file and run every statement on
// ClickHouse 18.16 and on current ClickHouse (chDB). A new statement belongs in its owner's list.

// Sample values every list of the registry uses, so one stage's reads find what another's
// sample inserts wrote.
var (
	SampleFrom      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	SampleTo        = SampleFrom.Add(24 * time.Hour)
	SampleCollected = SampleFrom.Add(26 * time.Hour) // when the sample rows were written
)

// SampleOrg is the registry's sample organization.
const SampleOrg = "org-sample"

// SampleProjects returns the registry's sample projects.
func SampleProjects() []string { return []string{"project-a", "project-b"} }

// MigrationStatements lists the statements migrate runs besides the migration files, and
// Open's check of a cluster.
func MigrationStatements() []Query {
	collected := SampleCollected
	return []Query{
		clusterShapeQuery("neonmeter_sample"),
		createDatabaseQuery(),
		createMigrationsTableQuery(),
		recordMigrationQuery(Migration{Version: 9999, Name: "catalog_sample", Checksum: "0"}, collected),
		appliedMigrationsQuery(),
		columnExistsQuery("usage_facts", "value"),
		layoutQuery(),
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
