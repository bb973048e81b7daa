package testworld_test

import (
	"context"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// Seed writes every kind of row to its table, once.
func TestSeed_WritesEveryKind(t *testing.T) {
	conn, db := chtest.New(t)
	h := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	testworld.Seed(t, conn, db, testworld.Rows{
		Facts:     []collector.Fact{{OrgID: "org", ProjectID: "p-1", Metric: "compute_unit_seconds", Hour: h, Value: 7, CollectedAt: h, Version: 1}},
		Revisions: []collector.Revision{{OrgID: "org", ProjectID: "p-1", Metric: "compute_unit_seconds", Hour: h, OldValue: 1, NewValue: 7, NewVersion: 1, DetectedAt: h, RunID: "r"}},
		Runs: []collector.Run{{RunID: "r", OrgID: "org", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
			WindowFrom: h, WindowTo: h.Add(time.Hour), StartedAt: h, Outcome: collector.OutcomeRunning}},
		Accounts: []accounts.Record{{ProjectID: "p-1", ValidFrom: h, CustomerID: "cus_1", Plan: "pro", Source: accounts.SourceCSV, RecordedAt: h, Version: 1}},
		Ledger: []billing.LedgerRow{{CustomerID: "cus_1", Target: "neon_compute", Hour: h, Sink: billing.SinkMeter, Metric: "compute_unit_seconds",
			Value: 1, Revision: 1, Identifier: "id", Status: billing.LedgerIntent, RecordedAt: h, RunID: "r", Version: 2}},
		Late: []billing.LateAdjustment{{CustomerID: "cus_1", Target: "neon_compute", Hour: h, Sink: billing.SinkMeter, Revision: 2,
			Metric: "compute_unit_seconds", OldValue: 1, NewValue: 2, Amount: 1, Reason: billing.LateFinalized, DetectedAt: h, RunID: "r"}},
		Reconciles: []billing.ReconcileRun{{RunID: "rec", Trigger: billing.TriggerSchedule, StartedAt: h, FinishedAt: h, From: h, To: h.Add(time.Hour)}},
		Drift: []billing.Drift{{CheckedAt: h, RunID: "rec", CustomerID: "cus_1", Target: "neon_compute", Sink: billing.SinkMeter, Bucket: h,
			Expected: 1, Actual: 2, Drift: 1}},
		Audit: []enforcement.AuditRecord{{At: h, CycleID: "c", ProjectID: "p-1", Plan: "pro", Metric: "compute_unit_seconds", Usage: 1, Limit: 2,
			Level: enforcement.LevelWarning, Action: "decision", Mode: enforcement.ModeDryRun, Outcome: enforcement.OutcomePlanned}},
	})
	for _, table := range []string{"usage_facts", "usage_revisions", "collection_runs", "account_history", "billing_ledger",
		"billing_late_adjustments", "billing_reconcile_runs", "billing_drift", "enforcement_audit"} {
		if n := chtest.Count(t, conn, "SELECT count() FROM "+db+"."+table); n != 1 {
			t.Errorf("%s holds %d rows, want 1", table, n)
		}
	}
}

// The fleet's usage collected, its projects mapped to a customer of the fake Stripe and
// imported, one push leaves in Stripe and in the ledger exactly the ground truth.
func TestWorld_CollectMapPushExact(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Projects: 20})
	org := f.Org(t, "scale")
	from, to := testworld.PushWindow(f.Clock.Now())
	testworld.Collect(t, f, org, from, f.Clock.Now().Truncate(time.Hour))
	if n := chtest.Count(t, f.Conn, "SELECT count() FROM "+f.DB+".usage_facts WHERE org_id = ?", org.ID); n == 0 {
		t.Fatal("collect stored no usage")
	}

	cat := testworld.Catalog(t, testworld.MeterCatalog)
	st := testworld.NewStripe(t, f.Clock.Now())
	st.Setup(t, cat)
	cus := st.Customer(t, "c")
	var m testworld.Mapping
	for _, p := range org.ProjectIDs {
		m.Add(p, cus, "pro", from.AddDate(0, 0, -1))
	}
	m.Import(t, f.Conn, f.DB, cat, f.Clock.Now())

	// Billed to cus on pro, to the unit: the mapping was imported as added.
	res, err := testworld.Pusher(t, st.PusherConfig(f.Conn, f.DB, cat, f.Clock.Now)).Push(context.Background(), false)
	if err != nil || res.Pending != 0 || res.Failed != 0 || res.Pushed == 0 {
		t.Fatalf("push: %+v, %v", res, err)
	}
	pro, _ := cat.Plan("pro")
	truth := testworld.Truth(f.Sim, pro, map[string][]string{cus: org.ProjectIDs}, from, to)
	if len(truth) == 0 {
		t.Fatal("the ground truth is empty: the comparison proves nothing")
	}
	testworld.DiffCells(t, "fake Stripe", st.MeterHolds(), truth)
	testworld.DiffCells(t, "ledger", testworld.LedgerHolds(t, billingstore.New(f.Conn, f.DB), from, to), truth)
}

// Subscribe puts a customer on a legacy metered price from the given start.
func TestStripe_SubscribeToMeteredPrice(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	st := testworld.NewStripe(t, start.Add(time.Hour))
	cus, price := st.Customer(t, ""), st.MeteredPrice(t, "written_data_bytes")
	sub := st.Subscribe(t, cus, start, price)
	if sub.Customer.ID != cus || len(sub.Items.Data) != 1 || sub.Items.Data[0].Price.ID != price || sub.StartDate != start.Unix() {
		t.Fatalf("subscription: customer %s, items %d, start %d", sub.Customer.ID, len(sub.Items.Data), sub.StartDate)
	}
}
