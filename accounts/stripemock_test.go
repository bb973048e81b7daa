package accounts_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// EnvStripeMock names the variable holding stripe-mock's HTTP address.
const envStripeMock = "NEONMETER_TEST_STRIPE_MOCK_URL"

// stripeMock returns stripe-mock's URL, failing the test (never skipping it) when nothing
// answers there.
func stripeMock(t *testing.T) string {
	t.Helper()
	url := os.Getenv(envStripeMock)
	if url == "" {
		url = "http://127.0.0.1:12111"
	}
	status, _, err := mockGet(url+"/v1/customers?limit=1", "sk_test_ping")
	if err != nil || status != 200 {
		t.Fatalf("stripe-mock is required at %s (status %d, %v)\nstart it with `scripts/stripe-mock.sh start` (or point %s at one)", url, status, err, envStripeMock)
	}
	return url
}

func mockGet(url, key string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Every request accounts sync makes passes stripe-mock, which checks each against Stripe's
// published API spec: the sync run directly against stripe-mock, and every request a sync
// sent to the fake (with real pagination cursors and the subscription items listing) replayed
// there.
func TestSync_RequestsPassStripeMock(t *testing.T) {
	mock := stripeMock(t)

	// stripe-mock does validate: a wrong value is refused.
	if status, body, _ := mockGet(mock+"/v1/subscriptions?status=everything", "sk_test_x"); status != 400 {
		t.Fatalf("stripe-mock accepted a bad status filter: %d %s", status, body)
	}

	conn, db := chtest.New(t)
	direct := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_neonmeter", URL: mock})
	res, err := newSyncer(t, direct, conn, db, time.Now, nil, nil).Sync(t.Context(), true)
	if err != nil {
		t.Fatalf("sync against stripe-mock: %v", err)
	}
	if res.Customers == 0 || res.Subscriptions == 0 {
		t.Fatalf("stripe-mock's fixtures were not read: %+v", res)
	}

	fake, srv, clock := startFake(t, fakeKey)
	sc := stripeClient(srv, fakeKey, nil)
	s := newScenario(t, clock, sc)
	s.addCustomers(260, 4) // three pages of customers, customer 7 with more items than embedded
	s.run()
	clock.Set(t2)
	fake.ResetRequests()
	if _, err := newSyncer(t, sc, conn, db, clock.Now, nil, nil).Sync(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	paths := map[string]bool{}
	for _, r := range reqs {
		paths[r.Path] = true
		status, body, err := mockGet(mock+r.Path+"?"+r.Query.Encode(), "sk_test_neonmeter")
		if err != nil || status != 200 {
			t.Fatalf("stripe-mock refuses %s %s?%s: %d %v\n%s", r.Method, r.Path, r.Query.Encode(), status, err, body)
		}
		if r.Method != "GET" || r.Body != "" {
			t.Fatalf("the sync sent %s %s with a body %q", r.Method, r.Path, r.Body)
		}
	}
	for _, p := range []string{"/v1/customers", "/v1/subscriptions", "/v1/subscription_items", "/v1/products"} {
		if !paths[p] {
			t.Fatalf("the replay never covered %s (paths %v)", p, paths)
		}
	}
	var cursors int
	for _, r := range reqs {
		if r.Query.Get("starting_after") != "" {
			cursors++
		}
	}
	if cursors < 4 || !strings.Contains(reqs[0].Query.Encode(), "limit=100") {
		t.Fatalf("%d paged requests of %d; first %v", cursors, len(reqs), reqs[0].Query)
	}
	t.Logf("%d requests of a sync replayed on stripe-mock", len(reqs))
}
