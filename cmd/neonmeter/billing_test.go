package main

import (
	"context"
	"math"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
)

// TestBillingPush_DryRunHostileHourIsAnError: a project's usage holds two hours near int64 max
// in one period (data past any collection bound). `billing push --dry-run` once printed their
// wrapped running total as a −2.5 × 10¹⁵ CU-hour value; now it exits 1 with an error naming the
// customer, the metric and the hour, prints no such value, and sends nothing to Stripe.
func TestBillingPush_DryRunHostileHourIsAnError(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	const key = "sk_test_cmd_billing_0123456789"
	fake := stripefake.New(stripefake.Options{APIKey: key, Now: time.Now})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: srv.URL})
	cu, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String("Hostile")})
	if err != nil {
		t.Fatal(err)
	}
	conn, db := chtest.New(t)
	now := time.Now().UTC()
	h2 := now.Add(-3 * time.Hour).Truncate(time.Hour)
	h1 := h2.Add(-time.Hour)
	if h1.Month() != h2.Month() { // keep both hours in one billing period
		h1, h2 = h1.Add(-time.Hour), h1
	}
	if err := accountsstore.New(conn, db).Insert(ctx, []accounts.Record{{ProjectID: "proj-hostile", ValidFrom: h1.AddDate(0, -2, 0), CustomerID: cu.ID,
		Plan: "pro", Source: accounts.SourceCSV, Basis: accounts.BasisImported, RecordedAt: now, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []time.Time{h1, h2} {
		if err := batch.Append("org-hostile", "proj-hostile", "compute_unit_seconds", h, uint64(math.MaxInt64-1000), "", "", now, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"NEONMETER_CLICKHOUSE_ADDR": chtest.Addr(), "NEONMETER_CLICKHOUSE_DATABASE": db,
		"NEONMETER_PLANS_FILE": "../../plans/example.yaml", "NEONMETER_STRIPE_API_URL": srv.URL, "NEONMETER_STRIPE_API_KEY": key} {
		t.Setenv(k, v)
	}
	fake.ResetRequests()
	code, out, errOut := run(t, ctx, "billing", "push", "--dry-run")
	if code != exitFailure {
		t.Fatalf("billing push --dry-run: exit %d, want %d\n%s\n%s", code, exitFailure, out, errOut)
	}
	for _, want := range []string{cu.ID, "compute_unit_seconds", h2.Format(time.RFC3339)} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error does not name %s:\n%s", want, errOut)
		}
	}
	if huge := regexp.MustCompile(`-?\d{10,}`).FindString(out); huge != "" {
		t.Errorf("the dry run printed the value %s:\n%s", huge, out)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("a dry run sent %d requests to Stripe", n)
	}
}
