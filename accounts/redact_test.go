package accounts_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
)

// Stripe's code paths had no redaction: an upstream error echoing the Authorization header put
// the secret key into the returned error, its *stripe.Error and stripe-go's log lines.
func TestStripeClient_EchoedKeyNeverLeaks(t *testing.T) {
	fake, srv, clock := startFake(t, fakeKey)
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sc := stripeClient(srv, fakeKey, log)
	conn, db := chtest.New(t)
	syncer := newSyncer(t, sc, conn, db, clock.Now, nil, log)
	for _, status := range []int{400, 500} {
		fake.Inject(stripefake.Fault{Method: "GET", Path: "/v1/customers", Status: status, Times: 4, EchoAuthorization: true})
		_, err := syncer.Sync(t.Context(), false)
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != status {
			t.Fatalf("status %d: want a *stripe.Error, got %v", status, err)
		}
		if !strings.Contains(se.Msg, "Authorization: Bearer ") {
			t.Fatalf("the fault did not echo the header, so this test proves nothing: %q", se.Msg)
		}
		for what, s := range map[string]string{"error": err.Error(), "stripe.Error.Msg": se.Msg, "logs": logs.String()} {
			if p := redacttest.Leak(s, fakeKey); p != "" {
				t.Errorf("status %d: %s leaks %q", status, what, p)
			}
		}
		fake.ClearFaults()
	}
	if logs.Len() == 0 {
		t.Error("nothing was logged, so the log check proves nothing")
	}
}
