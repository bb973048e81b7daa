package schema

import "time"

// The statement registry: every SQL statement of the product except the migration files' own
// (see Migrations), each with sample arguments, in an order that runs on a migrated database:
// inserts come before the reads of the same table. The registry in registry_test.go joins
// schema's lists with each stage's; tests print it to a golden file and run every statement on
// ClickHouse 18.16 and on current ClickHouse (chDB). A new statement belongs in its owner's list.

// sampleCollected is when the registry's sample rows were written: 26 h after the start of the
// samples' day, 2026-01-01 UTC. The stages' lists use the same sample values (org-sample,
// project-a, project-b), so reads find what the inserts wrote.
var sampleCollected = time.Date(2026, 1, 2, 2, 0, 0, 0, time.UTC)

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

// RetentionStatements lists the retention job's statements.
func RetentionStatements() []Query {
	return []Query{
		listPartitionsQuery(),
		dropPartitionQuery("usage_coarse", 202001),
		dropPartitionQuery("usage_facts", 202001),
		dropPartitionQuery("usage_revisions", 202001),
	}
}
