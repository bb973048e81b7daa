package billing_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// Environment of a child push process (see TestMain).
const (
	envChildStripe  = "NEONMETER_TEST_PUSH_STRIPE"
	envChildDB      = "NEONMETER_TEST_PUSH_DB"
	envChildCatalog = "NEONMETER_TEST_PUSH_CATALOG"
	// envChildRetryMax overrides the child's longest backoff (a Go duration).
	envChildRetryMax = "NEONMETER_TEST_PUSH_RETRY_MAX"
)

func TestMain(m *testing.M) { crashtest.Main(m, childPush) }

// childPush runs one push cycle in this process, to be killed by the parent test.
func childPush() error {
	ctx := context.Background()
	cat, err := plans.Load(os.Getenv(envChildCatalog))
	if err != nil {
		return err
	}
	conn, err := schema.Open(ctx, schema.Options{Addr: chtest.Addr()})
	if err != nil {
		return err
	}
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: os.Getenv(envChildStripe)})
	db := os.Getenv(envChildDB)
	retryMax := 5 * time.Millisecond
	if v := os.Getenv(envChildRetryMax); v != "" {
		if retryMax, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(sc), Store: billingstore.New(conn, db), Accounts: accountsstore.New(conn, db), Catalog: cat,
		DefaultPlan: "free", Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Rate: 300, APIRate: 300, Concurrency: 4,
		RetryBase: time.Millisecond, RetryMax: retryMax, MaxAttempts: 50, Now: func() time.Time { return testNow }})
	if err != nil {
		return err
	}
	_, err = p.Push(ctx, false)
	return err
}

// TestPush_KilledAndFaultedThenExact kills pushing processes with SIGKILL at random points at
// least 20 times while the fake answers 429/500/503 and drops responses after applying them,
// with a revision landing midway; then one push finishes: Stripe holds exactly the ground
// truth, and no identifier was ever sent with two different values.
func TestPush_KilledAndFaultedThenExact(t *testing.T) {
	w := newWorld(t, 400)
	catFile := filepath.Join(t.TempDir(), "plans.yaml")
	if err := os.WriteFile(catFile, []byte(catalogYAML(w.cat)), 0o600); err != nil {
		t.Fatal(err)
	}
	faults := []stripefake.Fault{{Status: 429}, {Status: 500}, {Status: 503}, {Drop: stripefake.DropAfter}, {Drop: stripefake.DropBefore}}
	for i := range 400 {
		f := faults[i%len(faults)]
		f.Method, f.Skip = "POST", 11
		w.fake.Inject(f)
	}
	rng := rand.New(rand.NewPCG(5, 9))
	killed, finished := 0, 0
	for attempt := 0; killed < 20; attempt++ {
		if attempt == 60 {
			t.Fatalf("only %d of 60 child pushes were killed before finishing", killed)
		}
		if attempt == 8 {
			w.Sim.Revise(30 * time.Hour)
			w.collect(t)
		}
		child := crashtest.Start(t, envChildStripe+"="+w.stripeURL, envChildDB+"="+w.DB, envChildCatalog+"="+catFile)
		select {
		case err := <-child.Done:
			if err != nil {
				t.Fatalf("child push failed on its own: %v\n%s", err, child.Output())
			}
			finished++
		case <-time.After(time.Duration(80+rng.IntN(900)) * time.Millisecond):
			child.Kill()
			killed++
		}
	}
	t.Logf("%d pushes killed, %d finished; %d faults left", killed, finished, w.fake.PendingFaults())
	if w.fake.PendingFaults() > 400-40 {
		t.Fatalf("only %d faults fired: the pushes did not meet the faults", 400-w.fake.PendingFaults())
	}
	w.fake.ClearFaults()
	p := w.pusher(t, nil, nil)
	if _, err := p.Push(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	from, to := window()
	truth := w.truth(from, to)
	diffCells(t, "fake Stripe after crashes", w.stripeHolds(), truth)
	diffCells(t, "ledger after crashes", w.ledgerHolds(t, from, to), truth)
	n := identifierValues(t, w.fake.Requests())
	t.Logf("%d requests, %d distinct identifiers, %d cells", len(billingRequests(w.fake.Requests())), n, len(truth))
	again, err := p.Push(context.Background(), false)
	if err != nil || again.Requests != 0 {
		t.Fatalf("push after recovery: %d requests, err %v; want 0", again.Requests, err)
	}
}

// catalogYAML writes the world's catalog back as YAML for a child process.
func catalogYAML(cat *plans.Catalog) string {
	out := "version: 1\nplans:\n"
	for _, p := range cat.Plans {
		out += "  - name: " + p.Name + "\n"
		if len(p.Billing) == 0 {
			continue
		}
		out += "    billing:\n"
		for _, m := range sortedKeys(p.Billing) {
			b := p.Billing[m]
			if b.MeterEventName != "" {
				out += fmt.Sprintf("      %s: {meter: %s, unit: %s, rounding: %s}\n", m, b.MeterEventName, b.Unit, b.Rounding)
			} else {
				out += fmt.Sprintf("      %s: {price: %s, unit: %s, rounding: %s}\n", m, b.PriceID, b.Unit, b.Rounding)
			}
		}
	}
	return out
}

// TestPush_KillReplaysSecondsOfWork: outcomes are written every DefaultFlushRows rows and every
// DefaultFlushEvery, so a kill -9 loses little: the next cycle re-sends (replays) only the values
// whose outcome was not yet written. A first child is killed right after Stripe accepted 1,000
// meter events (fewer than the 2,000 rows outcomes used to wait for); a second, after it accepted
// 600 more and then sat 3 s behind 429s. Their successors replay at most a batch and the
// requests in flight, and nothing for the stalled one; Stripe ends exact.
func TestPush_KillReplaysSecondsOfWork(t *testing.T) {
	w := newWorld(t, 400)
	catFile := filepath.Join(t.TempDir(), "plans.yaml")
	if err := os.WriteFile(catFile, []byte(catalogYAML(w.cat)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{envChildStripe + "=" + w.stripeURL, envChildDB + "=" + w.DB, envChildCatalog + "=" + catFile, envChildRetryMax + "=1s"}
	// The child runs until Stripe accepted n meter events, then (with stall) sits behind 429s.
	killAt := func(n int, stall time.Duration) (accepted int, done map[string]bool) {
		child := crashtest.Start(t, env...)
		for deadline := time.Now().Add(2 * time.Minute); w.fake.AcceptedMeterEvents() < n; time.Sleep(time.Millisecond) {
			select {
			case err := <-child.Done:
				t.Fatalf("child ended before %d accepted events: %v\n%s", n, err, child.Output())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("child did not reach %d accepted events", n)
			}
		}
		if stall > 0 {
			w.fake.Inject(stripefake.Fault{Method: "POST", Status: 429, Times: 1 << 30})
			time.Sleep(stall)
		}
		child.Kill()
		w.fake.ClearFaults()
		return w.fake.AcceptedMeterEvents(), acceptedKeys(w.fake.Requests())
	}
	replayed := func(since int, before map[string]bool) int {
		n := 0
		for _, r := range billingRequests(w.fake.Requests()[since:]) {
			if before[r.IdempotencyKey] {
				n++
			}
		}
		return n
	}
	const batch, inFlight = billing.DefaultFlushRows, 4
	first, done1 := killAt(1000, 0)
	mark := len(w.fake.Requests())
	_, done2 := killAt(first+600, 3*time.Second)
	if n := replayed(mark, done1); n > 2*batch+inFlight {
		t.Errorf("after a kill at %d accepted events the next run replayed %d requests, want at most %d", first, n, 2*batch+inFlight)
	} else {
		t.Logf("kill at %d accepted events: %d requests replayed", first, n)
	}
	mark = len(w.fake.Requests())
	p := w.pusher(t, nil, nil)
	if _, err := p.Push(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if n := replayed(mark, done2); n > inFlight {
		t.Errorf("after 3 s stalled the next run replayed %d requests, want at most %d (outcomes flush every %v)", n, inFlight, billing.DefaultFlushEvery)
	}
	from, to := window()
	diffCells(t, "fake Stripe after kills", w.stripeHolds(), w.truth(from, to))
	identifierValues(t, w.fake.Requests())
}

// acceptedKeys returns the Idempotency-Keys of the value requests Stripe answered with a 2xx.
func acceptedKeys(rs []stripefake.Request) map[string]bool {
	out := map[string]bool{}
	for _, r := range billingRequests(rs) {
		if r.Status >= 200 && r.Status < 300 {
			out[r.IdempotencyKey] = true
		}
	}
	return out
}
