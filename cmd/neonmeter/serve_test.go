package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/plans"
)

// TestServe_FullCycleWithStripe runs serve's whole cycle against the simulator and the fake
// Stripe: accounts sync finds a customer owning two projects on the pro plan, the sweep collects
// them, the billing push sends their metered usage, enforcement plans (dry-run), retention runs.
func TestServe_FullCycleWithStripe(t *testing.T) {
	s, _ := simEnv(t, 200)
	// The launch org: v2 metrics, billed through meters.
	fake, fakeURL, customer := proStripe(t, "sk_test_serve", "Acme", s.Orgs()[1].ProjectIDs[:2])
	fake.ResetRequests()

	addr := crashtest.FreeAddr(t)
	for k, v := range map[string]string{
		"NEONMETER_LISTEN_ADDR":      addr,
		"NEONMETER_PLANS_FILE":       exampleCatalog,
		"NEONMETER_STRIPE_API_KEY":   "sk_test_serve",
		"NEONMETER_STRIPE_API_URL":   fakeURL,
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
			if !strings.Contains(r.Body, "stripe_customer_id%5D="+customer) && !strings.Contains(r.Body, customer) {
				t.Errorf("a meter event for another customer: %s", r.Body)
			}
			events[r.Body] = true
		}
	}
	if len(events) == 0 {
		t.Fatalf("the billing push sent no meter events for the pro customer\n%s", errOut.String())
	}
}

// exampleCatalog is the plan catalog of the source tree's example.
var exampleCatalog = filepath.Join("..", "..", "plans", "example.yaml")

// proStripe starts the recording fake Stripe, accepting key, with the example catalog's meters,
// and a customer named name who owns projects on the pro plan since ten days ago. It returns
// the fake, its URL and the customer's id.
func proStripe(t *testing.T, key, name string, projects []string) (*stripefake.Server, string, string) {
	t.Helper()
	fake := stripefake.New(stripefake.Options{APIKey: key, Now: time.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: srv.URL})
	cat, err := plans.Load(exampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Setup(context.Background(), sc, cat, true); err != nil {
		t.Fatal(err)
	}
	price, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(2000), LookupKey: stripe.String("pro"),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Pro")}, Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	cus, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(name),
		Metadata: map[string]string{"neon_project_id": strings.Join(projects, ",")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items:             []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}},
		BackdateStartDate: stripe.Int64(time.Now().UTC().AddDate(0, 0, -10).Unix())}); err != nil {
		t.Fatal(err)
	}
	return fake, srv.URL, cus.ID
}

var update = flag.Bool("update", false, "rewrite golden files")

// TestServe_MetricsAndShutdown runs serve with a plan catalog, waits for its first cycle (sweep,
// enforcement in dry-run, retention), checks /healthz and /metrics (names against a golden list,
// and promtool's linter), then stops it like SIGTERM.
func TestServe_MetricsAndShutdown(t *testing.T) {
	simEnv(t, 200)
	addr := crashtest.FreeAddr(t)
	t.Setenv("NEONMETER_LISTEN_ADDR", addr)
	t.Setenv("NEONMETER_PLANS_FILE", exampleCatalog)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- (&Main{Stdout: io.Discard, Stderr: &errOut}).Run(ctx, []string{"serve"})
	}()
	var health string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			health = string(b)
			if strings.Contains(health, "succeeded") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(health, "succeeded") {
		cancel()
		t.Fatalf("serve never reported a successful sweep on /healthz (last %q)\n%s", health, errOut.String())
	}
	if resp, err := http.Get("http://" + addr + readyzPath); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz of a migrated, running serve: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The steps after the sweep (enforcement, retention) finish a moment later.
	var scrape []byte
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		scrape, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(scrape, []byte(`step="retention"`)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited %d after shutdown\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of cancellation")
	}

	for _, want := range []string{`neonmeter_collect_runs_total{endpoint="v2",result="success"} 1`, `neonmeter_serve_steps_total{result="success",step="retention"} 1`, `neonmeter_serve_steps_total{result="success",step="enforce"} 1`, "neonmeter_collect_data_freshness_seconds", "neonmeter_neon_api_requests_total", "neonmeter_build_info"} {
		if !bytes.Contains(scrape, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Only the capped series of projects over a limit may name a project.
	for _, line := range strings.Split(string(scrape), "\n") {
		if strings.Contains(line, `project_id="`) && !strings.HasPrefix(line, "neonmeter_enforcement_project_over_limit{") {
			t.Errorf("/metrics carries a project_id label outside the capped over-limit series: %s", line)
		}
	}
	checkGoldenNames(t, scrape)
	lint := exec.Command("promtool", "check", "metrics")
	lint.Stdin = bytes.NewReader(scrape)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// checkGoldenNames compares the neonmeter_ series names and types of a scrape with
// testdata/metrics.golden, the list dashboards and alert rules may rely on.
func checkGoldenNames(t *testing.T, scrape []byte) {
	t.Helper()
	var names []string
	for _, line := range strings.Split(string(scrape), "\n") {
		if strings.HasPrefix(line, "# TYPE neonmeter_") {
			names = append(names, strings.TrimPrefix(line, "# TYPE "))
		}
	}
	sort.Strings(names)
	got := strings.Join(names, "\n") + "\n"
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("metric names differ from %s (rerun with -update after review):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
