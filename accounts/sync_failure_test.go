package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/retry"
	"github.com/neonmeter/neonmeter/internal/stripefake"
)

// A sync that cannot read all of Stripe writes nothing; a bad request is not retried.
func TestSync_Failures(t *testing.T) {
	fake, srv, clock := startFake(t, fakeKey)
	sc := stripeClient(srv, fakeKey, nil)
	conn, db := chtest.New(t)
	reg, m := newMetrics(t)
	s := newScenario(t, clock, sc)
	s.addCustomers(30, 2)
	s.run()
	clock.Set(t2)
	syncer := newSyncer(t, sc, conn, db, clock.Now, m, nil)

	// Subscriptions fail on every attempt: the customers already read are not written.
	fake.Inject(stripefake.Fault{Method: "GET", Path: "/v1/subscriptions", Times: 10, Status: 500})
	_, err := syncer.Sync(t.Context(), false)
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 500 || !strings.Contains(err.Error(), "list subscriptions page 1 (attempt 4)") {
		t.Fatalf("err = %v", err)
	}
	if n := rowCount(t, conn, db); n != 0 {
		t.Fatalf("a failed sync wrote %d rows", n)
	}
	fake.ClearFaults()

	// A refused request (400) fails at once.
	fake.ResetRequests()
	fake.Inject(stripefake.Fault{Method: "GET", Path: "/v1/customers", Status: 400})
	if _, err := syncer.Sync(t.Context(), false); err == nil || !strings.Contains(err.Error(), "attempt 1)") {
		t.Fatalf("err = %v", err)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("a 400 was retried: %d requests", n)
	}

	// A dry run reports the changes and writes none.
	res, err := syncer.Sync(t.Context(), true)
	if err != nil || len(res.Changes) == 0 || !res.DryRun {
		t.Fatalf("dry run: %d changes, %v", len(res.Changes), err)
	}
	if n := rowCount(t, conn, db); n != 0 {
		t.Fatalf("a dry run wrote %d rows", n)
	}
	real, err := syncer.Sync(t.Context(), false)
	if err != nil || changesText(real.Changes) != changesText(res.Changes) {
		t.Fatalf("the real run differs from the dry run: %v", err)
	}
	if got := metrictest.Value(t, reg, "neonmeter_accounts_sync_runs_total", map[string]string{"result": "failure"}); got != 2 {
		t.Fatalf("failed runs = %v", got)
	}

	// A cancelled context stops the sync.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := syncer.Sync(ctx, false); err == nil {
		t.Fatalf("sync ran with a cancelled context")
	}
}

// The Stripe key appears in no log line (at debug level), no error and no metric, whether
// Stripe accepts it or refuses it.
func TestSync_KeyNeverLeaks(t *testing.T) {
	const secret = "sk_test_51SuperSecretValueThatMustNotLeak0042"
	fake, srv, clock := startFake(t, secret)
	conn, db := chtest.New(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg, m := newMetrics(t)
	good := stripeClient(srv, secret, log)
	s := newScenario(t, clock, good)
	s.addCustomers(20, 3)
	s.run()
	clock.Set(t2)
	fake.Inject(stripefake.Fault{Method: "GET", Path: "/v1/customers", Status: 503})

	var errs []string
	if _, err := newSyncer(t, good, conn, db, clock.Now, m, log).Sync(t.Context(), false); err != nil {
		t.Fatalf("sync: %v", err)
	}
	wrong := secret[:len(secret)-4] + "9999" // refused: Stripe's message shows only the last four
	_, err := newSyncer(t, stripeClient(srv, wrong, log), conn, db, clock.Now, m, log).Sync(t.Context(), false)
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "Invalid API Key") {
		t.Fatalf("wrong key: %v", err)
	}
	errs = append(errs, err.Error())
	var metrics bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&metrics, mf); err != nil {
			t.Fatal(err)
		}
	}
	if logs.Len() == 0 || metrics.Len() == 0 {
		t.Fatalf("nothing logged or no metrics")
	}
	for what, text := range map[string]string{"logs": logs.String(), "errors": strings.Join(errs, "\n"), "metrics": metrics.String()} {
		for _, leak := range []string{secret, wrong, secret[8:24], wrong[8:24]} {
			if strings.Contains(text, leak) {
				t.Fatalf("%s contain the key (%q):\n%s", what, leak, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Fatalf("the retry was not logged:\n%s", logs.String())
	}
}

// A list that claims more pages but repeats itself stops the sync instead of looping.
func TestFetchSnapshot_StuckPagination(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","url":"/v1/customers","has_more":true,"data":[{"id":"cus_1","object":"customer","created":1}]}`)
	}))
	defer srv.Close()
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_x", URL: srv.URL})
	_, err := accounts.FetchSnapshot(t.Context(), sc, accounts.Retry{Backoff: retry.Backoff{Min: time.Millisecond}})
	if err == nil || !strings.Contains(err.Error(), "list customers page 2: has_more without new objects") {
		t.Fatalf("err = %v", err)
	}
}
