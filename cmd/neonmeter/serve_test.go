package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/plans"
)

// TestServe_FullCycleWithStripe runs serve's whole cycle against the simulator and the fake
// Stripe: accounts sync finds a customer owning two projects on the pro plan, the sweep collects
// them, the billing push sends their metered usage, enforcement plans (dry-run), retention runs.
func TestServe_FullCycleWithStripe(t *testing.T) {
	s, _ := simEnv(t, 200)
	fake := stripefake.New(stripefake.Options{APIKey: "sk_test_serve", Now: time.Now})
	fs := httptest.NewServer(fake)
	t.Cleanup(fs.Close)
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_serve", URL: fs.URL})

	catalogPath := filepath.Join("..", "..", "plans", "example.yaml")
	cat, err := plans.Load(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Setup(context.Background(), sc, cat, true); err != nil {
		t.Fatal(err)
	}
	org := s.Orgs()[1] // launch org: v2 metrics, billed through meters
	owned := org.ProjectIDs[:2]
	price, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(2000), LookupKey: stripe.String("pro"),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Pro")}, Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	cus, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String("Acme"),
		Metadata: map[string]string{"neon_project_id": strings.Join(owned, ",")}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().AddDate(0, 0, -10)
	if _, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}, BackdateStartDate: stripe.Int64(start.Unix())}); err != nil {
		t.Fatal(err)
	}
	fake.ResetRequests()

	addr := freeAddr(t)
	for k, v := range map[string]string{
		"NEONMETER_LISTEN_ADDR":      addr,
		"NEONMETER_PLANS_FILE":       catalogPath,
		"NEONMETER_STRIPE_API_KEY":   "sk_test_serve",
		"NEONMETER_STRIPE_API_URL":   fs.URL,
		"NEONMETER_COLLECT_LOOKBACK": "24h",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() { done <- (&Main{Stdout: io.Discard, Stderr: &errOut}).Run(ctx, []string{"serve"}) }()
	var scrape []byte
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		scrape, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(scrape, []byte(`step="retention"`)) {
			break
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exited %d\n%s", code, errOut.String())
	}
	for _, step := range []string{"accounts_sync", "billing_push", "billing_reconcile", "enforce", "retention"} {
		if want := `neonmeter_serve_steps_total{result="success",step="` + step + `"} 1`; !bytes.Contains(scrape, []byte(want)) {
			t.Errorf("/metrics lacks %s\n%s", want, errOut.String())
		}
	}
	// The first cycle reconciles (none on record) and exports drift per meter for the alert.
	if want := `neonmeter_billing_drift_units{sink="meter",target="neon_compute"} 0`; !bytes.Contains(scrape, []byte(want)) {
		t.Errorf("/metrics lacks %s", want)
	}
	events := map[string]bool{}
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/billing/meter_events" {
			if !strings.Contains(r.Body, "stripe_customer_id%5D="+cus.ID) && !strings.Contains(r.Body, cus.ID) {
				t.Errorf("a meter event for another customer: %s", r.Body)
			}
			events[r.Body] = true
		}
	}
	if len(events) == 0 {
		t.Fatalf("the billing push sent no meter events for the pro customer\n%s", errOut.String())
	}
}
