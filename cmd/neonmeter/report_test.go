package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// seedReport stores 10 hours of 2 CU-hours each for p-1, owned by cus_1 on pro since the
// period's start, and a ledger of 2 units per hour of which Stripe confirmed all.
func seedReport(t *testing.T) string {
	conn, db := chtest.New(t)
	t0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	var facts []collector.Fact
	var ledger []billing.LedgerRow
	for h := 0; h < 10; h++ {
		hour := t0.Add(time.Duration(h) * time.Hour)
		facts = append(facts, collector.Fact{OrgID: "org-a", ProjectID: "p-1", Metric: "compute_unit_seconds", Hour: hour, Value: 7200,
			PeriodID: "per", PeriodPlan: "scale", CollectedAt: t0, Version: 1})
		ledger = append(ledger, billing.LedgerRow{CustomerID: "cus_1", Target: "neon_compute", Hour: hour, Sink: billing.SinkMeter,
			Metric: "compute_unit_seconds", Value: 2, ConfirmedValue: 2, Revision: 1, Identifier: "id", Status: billing.LedgerPushed,
			HTTPStatus: 200, RecordedAt: t0, RunID: "r", Version: 3, Accounted: 2})
	}
	testworld.Seed(t, conn, db, testworld.Rows{Facts: facts, Ledger: ledger, Accounts: []accounts.Record{{ProjectID: "p-1",
		ValidFrom: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), CustomerID: "cus_1", Plan: "pro", Source: accounts.SourceCSV,
		RecordedAt: t0, RunID: "r", Version: 1}}})
	return db
}

// TestReport_CustomerAndFleet runs the report commands on known data: 20 CU-hours cost 3.20 at
// Neon's 0.16 and earn 5.20 at pro's 0.26 (finance/example-costs.yaml), a margin of 2.00.
func TestReport_CustomerAndFleet(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	db := seedReport(t)
	t.Setenv("NEONMETER_CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("NEONMETER_CLICKHOUSE_DATABASE", db)
	t.Setenv("NEONMETER_PLANS_FILE", "../../plans/example.yaml")
	t.Setenv("NEONMETER_COSTS_FILE", "../../finance/example-costs.yaml")

	code, out, errOut := run(t, ctx, "report", "customer", "cus_1", "--period", "2026-11", "--format", "json")
	if code != exitOK {
		t.Fatalf("report customer: exit %d\n%s\n%s", code, out, errOut)
	}
	var r struct {
		Currency string `json:"currency"`
		Billed   []struct {
			Target           string
			Value, Confirmed int64
		}
		Margin []struct {
			Metric        string
			Raw           uint64
			Units         int64
			CostMicros    int64 `json:"cost_micros"`
			RevenueMicros int64 `json:"revenue_micros"`
			MarginMicros  int64 `json:"margin_micros"`
		} `json:"margin"`
		Hourly []struct{ Raw uint64 } `json:"hourly"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Currency != "usd" || len(r.Hourly) != 10 || len(r.Billed) != 1 || r.Billed[0].Confirmed != 20 {
		t.Fatalf("report: %+v", r)
	}
	if len(r.Margin) != 1 || r.Margin[0].Raw != 72000 || r.Margin[0].Units != 20 || r.Margin[0].CostMicros != 3_200_000 ||
		r.Margin[0].RevenueMicros != 5_200_000 || r.Margin[0].MarginMicros != 2_000_000 {
		t.Fatalf("margin: %+v", r.Margin)
	}
	code, out, _ = run(t, ctx, "report", "customer", "cus_1", "--period", "2026-11")
	if code != exitOK || !strings.Contains(out, "p-1") || !strings.Contains(out, "2.000000") || !strings.Contains(out, "neon_compute") {
		t.Fatalf("table: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, ctx, "report", "fleet", "--period", "2026-11", "--format", "csv")
	if code != exitOK || !strings.Contains(out, "plan,,pro,,,,2026-11-01T00:00:00Z,2.000000,customers=1 units=20 cost=3.200000 revenue=5.200000") {
		t.Fatalf("fleet csv: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, ctx, "report", "customer", "--period", "2026-11"); code != exitUsage || !strings.Contains(errOut, "name the customer") {
		t.Fatalf("no customer: exit %d %s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "costs.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NEONMETER_COSTS_FILE", bad)
	code, _, errOut = run(t, ctx, "report", "fleet", "--period", "2026-11")
	if code != exitUsage || !strings.Contains(errOut, "NEONMETER_COSTS_FILE") || !strings.Contains(errOut, "neon.compute_unit_seconds.price") {
		t.Fatalf("bad cost table: exit %d %s", code, errOut)
	}
}
