package billing_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
)

const secKey = "sk_test_SECURITY_0123456789abcdefghij"

// recorded is what a recording Stripe saw of one request.
type recorded struct {
	method, path, rawPath, rawQuery string
	form                            url.Values
}

// recordingStripe answers every request with answer and records it.
func recordingStripe(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []recorded) {
	var mu sync.Mutex
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, form})
		mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), seen...)
	}
}

// stripeError answers a Stripe error whose message is msg, raw (it may cut the JSON short).
func stripeError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// An error body echoing the Authorization header cut at every byte of the key — a JSON message,
// a body cut mid-JSON, a plain text body — leaves no prefix of MinPrefix bytes or more in the
// error billing's Stripe sink returns, nor in stripe-go's log lines.
func TestStripeSink_EchoCutAtEveryByteOfTheKey(t *testing.T) {
	bodies := map[string]func(auth string) string{
		"json message": func(auth string) string {
			return fmt.Sprintf(`{"error":{"type":"invalid_request_error","message":"refused %s…"}}`, auth)
		},
		"cut mid-json": func(auth string) string { return `{"error":{"message":"refused ` + auth },
		"text body":    func(auth string) string { return "proxy error: " + auth },
	}
	for n := 1; n <= len(secKey); n++ {
		for name, body := range bodies {
			srv, _ := recordingStripe(t, func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, http.StatusBadRequest, body(r.Header.Get("Authorization")[:len("Bearer ")+n]))
			})
			var logs strings.Builder
			sc := accounts.NewStripeClient(accounts.StripeOptions{Key: secKey, URL: srv.URL,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			_, err := billing.NewStripeSink(sc).Send(context.Background(), meterAction("cus_A1"))
			if err == nil {
				t.Fatalf("%s, %d bytes: the refused event was accepted", name, n)
			}
			for what, s := range map[string]string{"error": err.Error(), "logs": logs.String()} {
				if f := redacttest.ScanText(what, s, secKey); len(f) > 0 {
					t.Errorf("%s, key cut after %d bytes: %s", name, n, redacttest.Failures(f))
				}
			}
			if n >= redact.MinPrefix && name != "cut mid-json" && !strings.Contains(err.Error()+logs.String(), "Bearer "+redact.Placeholder) {
				t.Errorf("%s, %d bytes: the echo never reached the error, so the check proves nothing: %v\n%s", name, n, err, logs.String())
			}
		}
	}
}

func meterAction(customer string) billing.Action {
	k := billing.Key{CustomerID: customer, Target: "neon_compute", Sink: billing.SinkMeter, Hour: time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC)}
	return billing.Action{Value: billing.Value{Key: k, Metric: "compute_unit_seconds", Units: 42}, Identifier: billing.Identifier(k, 1)}
}

// A customer id and price id with quotes, separators, newlines and escapes reach Stripe as
// exactly one form value or query value each, byte for byte: they add no parameter, no path
// segment and no second event.
func TestStripeSink_HostileIdsSentExactlyOnce(t *testing.T) {
	hostile := []string{`cus_x&payload[value]=999999`, "cus_x\nIdempotency-Key: other", `cus_"q\`, "cus_../../v1/customers", "cus_%2F?x=1#f", "cus_ünï"}
	srv, seen := recordingStripe(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"object":"list","data":[],"has_more":false,"url":"/v1/subscriptions"}`)
			return
		}
		_, _ = io.WriteString(w, `{"object":"billing.meter_event","identifier":"x","event_name":"neon_compute"}`)
	})
	sink := billing.NewStripeSink(accounts.NewStripeClient(accounts.StripeOptions{Key: secKey, URL: srv.URL}))
	for _, id := range hostile {
		before := len(seen())
		if _, err := sink.Send(context.Background(), meterAction(id)); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if _, err := sink.Item(context.Background(), id, "price_"+id); err == nil {
			t.Fatalf("%q: an item was found in an empty list", id)
		}
		got := seen()[before:]
		if len(got) != 2 {
			t.Fatalf("%q: %d requests, want a meter event and a subscription list", id, len(got))
		}
		ev, list := got[0], got[1]
		wantKeys := []string{"event_name", "identifier", "payload[stripe_customer_id]", "payload[value]", "timestamp"}
		if ev.path != "/v1/billing/meter_events" || ev.rawQuery != "" || len(ev.form) != len(wantKeys) ||
			ev.form.Get("payload[stripe_customer_id]") != id || ev.form.Get("payload[value]") != "42" {
			t.Errorf("%q: meter event %s ?%s %v", id, ev.path, ev.rawQuery, ev.form)
		}
		q, _ := url.ParseQuery(list.rawQuery)
		if list.path != "/v1/subscriptions" || q.Get("customer") != id || q.Get("price") != "price_"+id || len(q["customer"]) != 1 {
			t.Errorf("%q: subscription list %s ?%s", id, list.path, list.rawQuery)
		}
	}
}
