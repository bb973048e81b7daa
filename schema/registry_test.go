package schema_test

import (
	"slices"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	financestore "github.com/neonmeter/neonmeter/finance/chstore"
	whatifstore "github.com/neonmeter/neonmeter/finance/whatif/chstore"
	leasestore "github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/schema"
)

// catalog is the statement registry: schema's own statements and every stage's, in an order
// that runs on a migrated database (a stage's reads of usage_hourly come after the collector's
// inserts). The golden file, the 18.16 run and the chDB run all read it; a stage's new
// statement reaches them through its store's Statements.
func catalog() []schema.Query {
	return slices.Concat(
		schema.MigrationStatements(),
		collectorstore.Statements(),
		accountsstore.Statements(),
		billingstore.Statements(),
		enforcementstore.Statements(),
		financestore.Statements(),
		whatifstore.Statements(),
		leasestore.Statements(),
		schema.RetentionStatements(),
	)
}
