package testworld

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
)

// Rows are what a test writes straight into a migrated database, each kind through the store
// of the stage that owns its table.
type Rows struct {
	Facts      []collector.Fact
	Revisions  []collector.Revision
	Runs       []collector.Run
	Accounts   []accounts.Record
	Ledger     []billing.LedgerRow
	Late       []billing.LateAdjustment
	Reconciles []billing.ReconcileRun
	Drift      []billing.Drift
	Audit      []enforcement.AuditRecord
}

// Seed writes r into database db on conn.
func Seed(t testing.TB, conn driver.Conn, db string, r Rows) {
	t.Helper()
	ctx := context.Background()
	cs, bs := collectorstore.New(conn, db), billingstore.New(conn, db)
	steps := []struct {
		n     int
		write func() error
	}{
		{len(r.Facts), func() error { return cs.InsertFacts(ctx, r.Facts) }},
		{len(r.Revisions), func() error { return cs.InsertRevisions(ctx, r.Revisions) }},
		{len(r.Accounts), func() error { return accountsstore.New(conn, db).Insert(ctx, r.Accounts) }},
		{len(r.Ledger), func() error { return bs.InsertLedger(ctx, r.Ledger) }},
		{len(r.Late), func() error { return bs.InsertLateAdjustments(ctx, r.Late) }},
		{len(r.Drift), func() error { return bs.InsertDrift(ctx, r.Drift) }},
		{len(r.Audit), func() error { return enforcementstore.New(conn, db).InsertAudit(ctx, r.Audit) }},
	}
	for _, s := range steps {
		if s.n > 0 {
			if err := s.write(); err != nil {
				t.Fatalf("testworld: seed: %v", err)
			}
		}
	}
	for _, run := range r.Runs {
		if err := cs.WriteRun(ctx, run); err != nil {
			t.Fatalf("testworld: seed run %s: %v", run.RunID, err)
		}
	}
	for _, run := range r.Reconciles {
		if err := bs.InsertReconcileRun(ctx, run); err != nil {
			t.Fatalf("testworld: seed reconcile run %s: %v", run.RunID, err)
		}
	}
}
