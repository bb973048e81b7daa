package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// The keys of the key-echo test: 24 characters of Neon key, as in the reported leak.
const (
	echoNeonKey   = "napi_ECHO_0123456789abcd"
	echoStripeKey = "sk_test_ECHO_9876543210zyxwvu"
)

var echoKeys = []string{echoNeonKey, echoStripeKey}

// echoTranscript collects every output of the commands the test runs.
type echoTranscript struct {
	t   *testing.T
	all strings.Builder
}

// run runs a command, keeps its output, and checks its exit code.
func (e *echoTranscript) run(want int, args ...string) string {
	e.t.Helper()
	code, out, errOut := run(e.t, context.Background(), args...)
	fmt.Fprintf(&e.all, "$ %v\n%s%s", args, out, errOut)
	if code != want {
		e.t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
	}
	return out + errOut
}

// An upstream that echoes the Authorization header in its error body (Neon, Stripe) must not
// get any 8-character prefix of either key into logs, output, stored rows or metrics. Before one
// redaction layer, the Neon error path truncated first (15 of 24 key characters leaked into logs
// and collection_runs.error) and Stripe paths had no redaction at all.
func TestKeyEcho_NoKeyPrefixInLogsRowsOrMetrics(t *testing.T) {
	s, db := simEnvKey(t, 60, echoNeonKey)
	fake, fakeURL, _ := proStripe(t, echoStripeKey, "Echo", s.Orgs()[1].ProjectIDs[:2])
	for k, v := range map[string]string{
		"NEONMETER_PLANS_FILE":        exampleCatalog,
		"NEONMETER_STRIPE_API_KEY":    echoStripeKey,
		"NEONMETER_STRIPE_API_URL":    fakeURL,
		"NEONMETER_LOG_LEVEL":         "debug", // the clients' retry lines carry the errors
		"NEONMETER_NEON_MAX_RETRIES":  "1",
		"NEONMETER_COLLECT_LOOKBACK":  "24h",
		"NEONMETER_BILLING_RATE":      "1000",
		"NEONMETER_BILLING_LOOKBACK":  "24h",
		"NEONMETER_STRIPE_TIMEOUT":    "10s",
		"NEONMETER_ENFORCEMENT_GRACE": "0s",
	} {
		t.Setenv(k, v)
	}
	e := &echoTranscript{t: t}
	e.run(exitOK, "migrate")
	e.run(exitOK, "collect", "--last", "24h")
	e.run(exitOK, "accounts", "sync")

	// Stripe echoes the key: on the meter events billing sends, and on the customers list.
	fake.Inject(stripefake.Fault{Method: http.MethodPost, Path: "/v1/billing/meter_events", Status: 400, Times: 1 << 20, EchoAuthorization: true})
	pushOut := e.run(exitFailure, "billing", "push")
	fake.Inject(stripefake.Fault{Method: http.MethodGet, Path: "/v1/customers", Status: 400, Times: 1 << 20, EchoAuthorization: true})
	syncOut := e.run(exitFailure, "accounts", "sync")
	// Neon echoes the key at an offset that puts 15 of its 24 characters before the client's
	// 512-byte message limit.
	s.SetFaults(sim.Faults{Rate500: 1, EchoAuthOffset: 512 - len("Bearer ") - 15})
	collectOut := e.run(exitFailure, "collect", "--last", "2h")
	for what, out := range map[string]string{"billing push": pushOut, "accounts sync": syncOut, "collect": collectOut} {
		if !strings.Contains(out, "Bearer "+redact.Placeholder) {
			t.Errorf("%s: the echo never reached the output, so the check proves nothing:\n%s", what, out)
		}
	}
	scrape := echoServe(t, e)

	clean(t, "command output", redacttest.ScanText("output", e.all.String(), echoKeys...), nil)
	clean(t, "/metrics", redacttest.ScanText("/metrics", scrape, echoKeys...), nil)
	checkRowsClean(t, db)
}

// echoServe runs serve while both upstreams echo the key, until its first cycle failed, and
// returns a scrape of /metrics; serve's log lines join the transcript.
func echoServe(t *testing.T, e *echoTranscript) string {
	t.Helper()
	bodies, logs := serveUntilFailedCycle(t, "/healthz", "/metrics")
	e.all.WriteString("$ serve\n" + logs)
	if !strings.Contains(bodies["/healthz"], "failed") || !strings.Contains(bodies["/metrics"], "neonmeter_neon_api_requests_total") {
		t.Fatalf("serve never finished a failed cycle with metrics:\n%s", logs)
	}
	return bodies["/metrics"]
}

// checkRowsClean looks for a key prefix in every String-like column of every table, and for
// the failed collection run whose error held the echo.
func checkRowsClean(t *testing.T, db string) {
	t.Helper()
	conn := chtest.Connect(t)
	ctx := context.Background()
	f, err := redacttest.ScanClickHouse(ctx, conn, db, echoKeys...)
	clean(t, "rows", f, err)
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.collection_runs WHERE position(error, 'Bearer [redacted]') > 0", db)).Scan(&n); err != nil || n == 0 {
		t.Errorf("no collection run recorded the redacted echo (%d, %v): the row check proves nothing", n, err)
	}
}
