package billing

// Fuzz targets of what billing reads from Stripe: summaries (meter hours, usage-record periods)
// and error answers, decoded by stripe-go and judged by the sink and classify. A real client
// (accounts.NewStripeClient, with its redacting transport) talks to an in-process transport
// that answers with the fuzzed body; real-shaped seeds, answers of stripe-mock, live in
// testdata/fuzz/<target>.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
)

const (
	fuzzKey = "sk_test_fuzz_0123456789abcdefghij"
	// fuzzMaxRequests bounds the requests of one call: a call reaching it would page forever.
	fuzzMaxRequests = 8
	fuzzMaxBody     = 64 << 10
)

// fuzzSubscriptions is a valid subscription list: cus_1 has item si_1 on price_1.
const fuzzSubscriptions = `{"object":"list","has_more":false,"data":[{"id":"sub_1","object":"subscription","customer":"cus_1",` +
	`"items":{"object":"list","has_more":false,"data":[{"id":"si_1","object":"subscription_item","price":{"id":"price_1","object":"price"}}]}}]}`

// stripeReplay answers each request: the fuzzed status and body on the route under test, a
// fixed subscription list on /v1/subscriptions, and a 500 once fuzzMaxRequests were served.
type stripeReplay struct {
	route  string
	status int
	body   []byte
	n      int
}

func (r *stripeReplay) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n++
	status, body := http.StatusNotFound, []byte(`{"error":{"type":"invalid_request_error","message":"no such route"}}`)
	switch {
	case r.n > fuzzMaxRequests:
		status, body = http.StatusInternalServerError, []byte(`{"error":{"type":"api_error","message":"fuzz: too many requests"}}`)
	case strings.HasPrefix(req.URL.Path, r.route):
		status, body = r.status, r.body
	case req.URL.Path == "/v1/subscriptions":
		status, body = http.StatusOK, []byte(fuzzSubscriptions)
	}
	return &http.Response{
		StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}, "Request-Id": {"req_fuzz"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}, nil
}

func fuzzSink(rp *stripeReplay) *StripeSink {
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: fuzzKey, URL: "http://stripe.test", HTTPClient: &http.Client{Transport: rp}})
	return NewStripeSink(sc)
}

// paged fails a call that needed every request fuzzMaxRequests allows: without the cap it
// would have paged forever.
func paged(t *testing.T, rp *stripeReplay) {
	t.Helper()
	if rp.n > fuzzMaxRequests {
		t.Fatalf("%d requests for one call: the list pages forever", rp.n)
	}
}

var fuzzFrom = time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)

// FuzzStripeMeterSummaries: what MeterSummaries returns for [from, from+6h) are hours of that
// window, each once, with exactly the whole value Stripe sent; a refusal names the customer.
func FuzzStripeMeterSummaries(f *testing.F) {
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"mtrusg_1","object":"billing.meter_event_summary","aggregated_value":25,"start_time":1778371200,"end_time":1778374800,"meter":"mtr_1"}]}`))
	f.Add([]byte(`{"object":"list","has_more":true,"data":[{"id":"mtrusg_1","aggregated_value":25,"start_time":1778371200,"end_time":1778374800}]}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":2.5,"start_time":1778371200},{"id":"b","aggregated_value":-7,"start_time":1778374800}]}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":1e30,"start_time":1778371200}]}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":1,"start_time":1778371200},{"id":"b","aggregated_value":2,"start_time":1778371200}]}`))
	f.Add([]byte(`{"object":"list","has_more":true,"data":[]}`))
	from, to := fuzzFrom, fuzzFrom.Add(6*time.Hour)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > fuzzMaxBody {
			return
		}
		rp := &stripeReplay{route: "/v1/billing/meters/mtr_1/event_summaries", status: http.StatusOK, body: body}
		sums, err := fuzzSink(rp).MeterSummaries(context.Background(), "mtr_1", "cus_1", from, to)
		paged(t, rp)
		if err != nil {
			if !strings.Contains(err.Error(), "cus_1") {
				t.Fatalf("error %q does not name the customer", err)
			}
			return
		}
		var wire struct {
			Data []struct {
				Value float64 `json:"aggregated_value"`
				Start int64   `json:"start_time"`
			} `json:"data"`
		}
		werr := json.Unmarshal(body, &wire)
		seen := map[time.Time]bool{}
		for _, s := range sums {
			if s.Start.Before(from) || !s.Start.Before(to) || seen[s.Start] {
				t.Fatalf("accepted hour %s (window %s–%s, summaries %v)", s.Start, from, to, sums)
			}
			seen[s.Start] = true
			found := werr != nil
			for _, w := range wire.Data {
				found = found || w.Start == s.Start.Unix() && w.Value == float64(s.Value)
			}
			if !found {
				t.Fatalf("summary %+v is not a value Stripe sent: %s", s, body)
			}
		}
	})
}

// FuzzStripeUsageRecordSummaries: the customer's item is found on a valid subscription list;
// what UsageRecordSummaries returns is what Stripe sent for that item, never negative, each
// period once.
func FuzzStripeUsageRecordSummaries(f *testing.F) {
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"sis_1","object":"usage_record_summary","period":{"start":1777593600,"end":1780272000},"subscription_item":"si_1","total_usage":123}]}`))
	f.Add([]byte(`{"object":"list","has_more":true,"data":[{"id":"sis_1","period":{"start":1777593600},"total_usage":1}]}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"sis_1","period":null,"total_usage":5},{"id":"sis_2","period":{"start":1},"total_usage":-4}]}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"sis_1","period":{"start":1},"total_usage":1},{"id":"sis_2","period":{"start":1},"total_usage":2}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > fuzzMaxBody {
			return
		}
		rp := &stripeReplay{route: "/v1/subscription_items/si_1/usage_record_summaries", status: http.StatusOK, body: body}
		sums, err := fuzzSink(rp).UsageRecordSummaries(context.Background(), "cus_1", "price_1")
		paged(t, rp)
		if err != nil {
			if !strings.Contains(err.Error(), "si_1") {
				t.Fatalf("error %q does not name the subscription item", err)
			}
			return
		}
		seen := map[time.Time]bool{}
		for _, s := range sums {
			if s.Value < 0 || seen[s.Start] || s.Start.Location() != time.UTC {
				t.Fatalf("accepted summary %+v (summaries %v)", s, sums)
			}
			seen[s.Start] = true
		}
	})
}

// FuzzStripeErrorBody: any refusal of a meter event (4xx/5xx, any body, which may echo the key)
// is an error without the key; an error object Stripe sent is a *stripe.Error of that status,
// classified by its status as the retry rules of docs/billing.md say.
func FuzzStripeErrorBody(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{400, `{"error":{"type":"invalid_request_error","message":"An event already exists with identifier nm-1."}}`},
		{400, `{"error":{"type":"invalid_request_error","code":"resource_already_exists","param":"identifier","message":"exists"}}`},
		{400, `{"error":{"type":"invalid_request_error","param":"timestamp","message":"too old"}}`},
		{401, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: ` + fuzzKey + `"}}`},
		{409, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}`},
		{429, `{"error":{"type":"rate_limit_error","message":"Too many requests"}}`},
		{500, `{"error":{"type":"api_error"}}`},
		{503, `<html>unavailable</html>`},
		{400, `{"error":"not an object"}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	k := Key{CustomerID: "cus_1", Target: "neon_compute", Sink: SinkMeter, Hour: fuzzFrom}
	a := Action{Kind: ActionSend, Value: Value{Key: k, Units: 42}, Revision: 1, Identifier: Identifier(k, 1)}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if len(body) > fuzzMaxBody {
			return
		}
		rp := &stripeReplay{route: "/v1/billing/meter_events", status: 400 + int(uint(status)%200), body: body}
		_, err := fuzzSink(rp).Send(context.Background(), a)
		if strings.Contains(err.Error(), fuzzKey) {
			t.Fatalf("the error holds the key: %q", err)
		}
		var se *stripe.Error
		if !errors.As(err, &se) {
			// A body stripe-go cannot read as an error object ("{}", HTML): the status is lost,
			// so it is retried with the same key, like a lost answer.
			if out, st := classify(err); out != outRetry || st != 0 {
				t.Fatalf("status %d: undecodable error %q classified %d, %d", rp.status, err, out, st)
			}
			return
		}
		switch {
		case se.HTTPStatusCode != rp.status:
			t.Fatalf("status %d reported as %d", rp.status, se.HTTPStatusCode)
		case strings.Contains(err.Error(), fuzzKey) || strings.Contains(se.Msg, fuzzKey):
			t.Fatalf("the error holds the key: %q", err)
		}
		out, st := classify(err)
		if st != rp.status {
			t.Fatalf("classify: status %d for %d", st, rp.status)
		}
		want := map[int]failure{429: outRetry, 409: outRetry, 503: outRetry}[rp.status]
		switch {
		case want != 0 && out != want,
			want == 0 && rp.status >= 500 && out != outNewKey,
			rp.status < 500 && want == 0 && out != outDuplicate && out != outLate && out != outFailed:
			t.Fatalf("status %d body %q classified %d", rp.status, body, out)
		case out == outDuplicate && rp.status != 400:
			t.Fatalf("status %d read as a duplicate identifier", rp.status)
		}
	})
}

// Found by the targets above: stripe-go's own paging panicked on an empty first page claiming
// more (has_more) and paged forever on a repeated page, and a fractional meter total was
// truncated. Every Stripe list billing reads now pages by itself, and refuses those answers.
func TestStripeSummaries_RefuseImpossibleValues(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ body, want string }{
		{`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":2.5,"start_time":1778371200}]}`, "value 2.5 of hour 2026-05-10T00:00:00Z is not a whole number"},
		{`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":1,"start_time":1778371200},{"id":"b","aggregated_value":2,"start_time":1778371200}]}`, "listed twice"},
		{`{"object":"list","has_more":true,"data":[{"id":"a","aggregated_value":1,"start_time":1778371200}]}`, "listed twice"},
		{`{"object":"list","has_more":false,"data":[{"id":"a","aggregated_value":1e30,"start_time":1778371200}]}`, "exceeds"},
		{`{"object":"list","has_more":true,"data":[]}`, "page 1 has has_more but no new object"},
	} {
		rp := &stripeReplay{route: "/v1/billing/meters/mtr_1/event_summaries", status: http.StatusOK, body: []byte(tc.body)}
		_, err := fuzzSink(rp).MeterSummaries(ctx, "mtr_1", "cus_1", fuzzFrom, fuzzFrom.Add(6*time.Hour))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cus_1") {
			t.Errorf("%s: got %v, want an error naming cus_1 and %q", tc.body, err, tc.want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`{"object":"list","has_more":false,"data":[{"id":"s","period":{"start":1},"total_usage":-4}]}`, "total_usage -4 is negative"},
		{`{"object":"list","has_more":true,"data":[{"id":"s","period":{"start":1},"total_usage":4}]}`, "listed twice"},
	} {
		rp := &stripeReplay{route: "/v1/subscription_items/si_1/usage_record_summaries", status: http.StatusOK, body: []byte(tc.body)}
		_, err := fuzzSink(rp).UsageRecordSummaries(ctx, "cus_1", "price_1")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "si_1") {
			t.Errorf("%s: got %v, want an error naming si_1 and %q", tc.body, err, tc.want)
		}
	}
	empty := []byte(`{"object":"list","has_more":true,"data":[]}`)
	rp := &stripeReplay{route: "/v1/subscriptions", status: http.StatusOK, body: empty}
	if _, err := fuzzSink(rp).Item(ctx, "cus_1", "price_1"); err == nil || !strings.Contains(err.Error(), "no new object") {
		t.Errorf("subscriptions: %v", err)
	}
	rp = &stripeReplay{route: "/v1/billing/meters", status: http.StatusOK, body: empty}
	if _, err := fuzzSink(rp).Meters(ctx); err == nil || !strings.Contains(err.Error(), "list meters: page 1 has has_more") {
		t.Errorf("meters: %v", err)
	}
}
