package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
)

func TestPlansCheck(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	code, out, errOut := run(t, ctx, "plans", "check", "../../plans/example.yaml")
	if code != exitOK || !strings.Contains(out, "valid, 3 plan(s)") || !strings.Contains(out, "enterprise") {
		t.Fatalf("example: exit %d\n%s%s", code, out, errOut)
	}
	broken, _ := filepath.Glob("../../plans/testdata/broken/*.yaml")
	if len(broken) < 10 {
		t.Fatalf("%d broken catalogs", len(broken))
	}
	for _, f := range broken {
		data, _ := os.ReadFile(f)
		code, _, errOut := run(t, ctx, "plans", "check", f)
		if code != exitUsage {
			t.Fatalf("%s: exit %d, want %d", f, code, exitUsage)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if want, ok := strings.CutPrefix(line, "# want: "); ok && !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", f, want, errOut)
			}
		}
	}
	if code, _, _ := run(t, ctx, "plans", "check", "missing.yaml"); code != exitUsage {
		t.Fatalf("missing file: exit %d", code)
	}
	if code, _, _ := run(t, ctx, "plans"); code != exitUsage {
		t.Fatalf("no subcommand: exit %d", code)
	}
	t.Setenv("NEONMETER_PLANS_FILE", "../../plans/example.yaml")
	mustRun(t, ctx, "plans", "check")
}

func TestAccounts_Commands(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	const key = "sk_test_cmd_secret_value_0123456789"
	fake := stripefake.New(stripefake.Options{APIKey: key})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	conn, db := chtest.New(t)
	_ = conn
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: srv.URL, HTTPClient: srv.Client()})
	fake.SetNow(time.Now().Add(-48 * time.Hour))
	prod, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("Pro")})
	if err != nil {
		t.Fatal(err)
	}
	price, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), Product: stripe.String(prod.ID), LookupKey: stripe.String("pro"),
		UnitAmount: stripe.Int64(1900), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	cp := &stripe.CustomerParams{}
	cp.AddMetadata("neon_project_id", "proj-one,proj-two")
	cu, err := sc.Customers.New(cp)
	if err != nil {
		t.Fatal(err)
	}
	fake.SetNow(time.Now().Add(-24 * time.Hour))
	if _, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cu.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("NEONMETER_CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("NEONMETER_CLICKHOUSE_DATABASE", db)
	t.Setenv("NEONMETER_PLANS_FILE", "../../plans/example.yaml")
	t.Setenv("NEONMETER_STRIPE_API_URL", srv.URL)

	if code, _, errOut := run(t, ctx, "accounts", "sync"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_STRIPE_API_KEY") {
		t.Fatalf("sync without key: exit %d %s", code, errOut)
	}
	t.Setenv("NEONMETER_STRIPE_API_KEY", key)
	code, out, errOut := run(t, ctx, "accounts", "sync", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would record 4 change(s)") || !strings.Contains(out, "proj-two") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, ctx, "accounts", "sync")
	if code != exitOK || !strings.Contains(out, "1 customers, 1 subscriptions, 2 projects") || !strings.Contains(out, "recorded 4 change(s)") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ = run(t, ctx, "accounts", "sync"); code != exitOK || !strings.Contains(out, "recorded 0 change(s)") {
		t.Fatalf("second sync: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, ctx, "accounts", "list")
	if code != exitOK || !strings.Contains(out, "proj-one") || !strings.Contains(out, cu.ID) || !strings.Contains(out, "pro") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, ctx, "accounts", "list", "--project", "proj-one")
	if code != exitOK || !strings.Contains(out, "subscription_start") || !strings.Contains(out, "customer_created") {
		t.Fatalf("list --project: exit %d\n%s", code, out)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "map.csv")
	os.WriteFile(good, []byte("project_id,customer_id,plan,valid_from\nproj-three,cus_other,enterprise,2026-01-05T00:00:00Z\n"), 0o644)
	if code, out, errOut := run(t, ctx, "accounts", "import", good, "--dry-run"); code != exitOK || !strings.Contains(out, "would record 1 change(s)") {
		t.Fatalf("import dry run: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, ctx, "accounts", "import", good); code != exitOK || !strings.Contains(out, "recorded 1 change(s)") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("project_id,customer_id,plan,valid_from\nproj-x,cus_1,gold,\nBAD,cus_1,pro,\n"), 0o644)
	code, _, errOut = run(t, ctx, "accounts", "import", bad)
	if code != exitUsage || !strings.Contains(errOut, "bad.csv:2: plan \"gold\"") || !strings.Contains(errOut, "bad.csv:3: project_id") {
		t.Fatalf("bad import: exit %d\n%s", code, errOut)
	}

	// Stripe unreachable: exit 1, and the key is nowhere in the output.
	t.Setenv("NEONMETER_STRIPE_API_URL", "http://127.0.0.1:1")
	code, out, errOut = run(t, ctx, "accounts", "sync")
	if code != exitFailure {
		t.Fatalf("unreachable Stripe: exit %d", code)
	}
	if strings.Contains(out+errOut, key) || strings.Contains(out+errOut, "secret_value") {
		t.Fatalf("the key leaked:\n%s%s", out, errOut)
	}
	t.Setenv("NEONMETER_NEON_API_KEY", "neon-key-for-config") // config checks what serve needs
	t.Setenv("NEONMETER_NEON_ORG_ID", "org-config-check")
	if code, out, _ := run(t, ctx, "config"); code != exitOK || strings.Contains(out, "secret_value") || !strings.Contains(out, "NEONMETER_STRIPE_API_KEY") {
		t.Fatalf("config: exit %d\n%s", code, out)
	}
	if code, _, _ := run(t, ctx, "accounts", "frob"); code != exitUsage {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}
