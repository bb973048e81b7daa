package billing_test

import (
	"cmp"
	"context"
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
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// pushChild is what a child push process is started with (see TestMain).
type pushChild struct {
	Stripe, DB, Catalog string        // the fake's URL, the database, the plan catalog's file
	RetryMax            time.Duration // the longest backoff; zero keeps 5 ms
}

func TestMain(m *testing.M) { crashtest.Main(m, childPush) }

// childPush runs one push cycle in this process, to be killed by the parent test.
func childPush() error {
	ctx := context.Background()
	var c pushChild
	if err := crashtest.Settings(&c); err != nil {
		return err
	}
	cat, err := plans.Load(c.Catalog)
	if err != nil {
		return err
	}
	conn, err := schema.Open(ctx, schema.Options{Addr: chtest.Addr()})
	if err != nil {
		return err
	}
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: testworld.FakeKey, URL: c.Stripe})
	p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(sc), Store: billingstore.New(conn, c.DB), Accounts: accountsstore.New(conn, c.DB), Catalog: cat,
		DefaultPlan: "free", Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Rate: 300, APIRate: 300, Concurrency: 4,
		RetryBase: time.Millisecond, RetryMax: cmp.Or(c.RetryMax, 5*time.Millisecond), MaxAttempts: 50, Now: func() time.Time { return testNow }})
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
	settings := w.pushChild(t)
	faults := []stripefake.Fault{{Status: 429}, {Status: 500}, {Status: 503}, {Drop: stripefake.DropAfter}, {Drop: stripefake.DropBefore}}
	for i := range 400 {
		f := faults[i%len(faults)]
		f.Method, f.Skip = "POST", 11
		w.stripe.Fake.Inject(f)
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
		if crashtest.KillWithin(t, "push", time.Duration(80+rng.IntN(900))*time.Millisecond, settings) {
			killed++
		} else {
			finished++
		}
	}
	t.Logf("%d pushes killed, %d finished; %d faults left", killed, finished, w.stripe.Fake.PendingFaults())
	if w.stripe.Fake.PendingFaults() > 400-40 {
		t.Fatalf("only %d faults fired: the pushes did not meet the faults", 400-w.stripe.Fake.PendingFaults())
	}
	w.stripe.Fake.ClearFaults()
	p := w.pusher(t, nil, nil)
	push(t, p)
	from, to := window()
	truth := w.truth(from, to)
	testworld.DiffCells(t, "fake Stripe after crashes", w.stripeHolds(), truth)
	testworld.DiffCells(t, "ledger after crashes", w.ledgerHolds(t, from, to), truth)
	n := identifierValues(t, w.stripe.Fake.Requests())
	t.Logf("%d requests, %d distinct identifiers, %d cells", len(billingRequests(w.stripe.Fake.Requests())), n, len(truth))
	again, err := p.Push(context.Background(), false)
	if err != nil || again.Requests != 0 {
		t.Fatalf("push after recovery: %d requests, err %v; want 0", again.Requests, err)
	}
}

// pushChild returns the settings of a child push on the world: its fake Stripe, its database
// and its catalog, written to a file.
func (w *world) pushChild(t *testing.T) pushChild {
	file := filepath.Join(t.TempDir(), "plans.yaml")
	if err := os.WriteFile(file, []byte(w.catalogYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return pushChild{Stripe: w.stripe.URL, DB: w.DB, Catalog: file}
}

// TestPush_KillReplaysSecondsOfWork: outcomes are written every DefaultFlushRows rows and every
// DefaultFlushEvery, so a kill -9 loses little: the next cycle re-sends (replays) only the values
// whose outcome was not yet written. A first child is killed right after Stripe accepted 1,000
// meter events (fewer than the 2,000 rows outcomes used to wait for); a second, after it accepted
// 600 more and then sat 3 s behind 429s. Their successors replay at most a batch and the
// requests in flight, and nothing for the stalled one; Stripe ends exact.
func TestPush_KillReplaysSecondsOfWork(t *testing.T) {
	w := newWorld(t, 400)
	settings := w.pushChild(t)
	settings.RetryMax = time.Second
	// The child runs until Stripe accepted n meter events, then (with stall) sits behind 429s.
	killAt := func(n int, stall time.Duration) (accepted int, done map[string]bool) {
		child := crashtest.StartWith(t, settings)
		for deadline := time.Now().Add(2 * time.Minute); w.stripe.Fake.AcceptedMeterEvents() < n; {
			if exited, err := child.Exited(time.Millisecond); exited {
				t.Fatalf("child ended before %d accepted events: %v\n%s", n, err, child.Output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("child did not reach %d accepted events", n)
			}
		}
		if stall > 0 {
			w.stripe.Fake.Inject(stripefake.Fault{Method: "POST", Status: 429, Times: 1 << 30})
			time.Sleep(stall)
		}
		child.Kill()
		w.stripe.Fake.ClearFaults()
		return w.stripe.Fake.AcceptedMeterEvents(), acceptedKeys(w.stripe.Fake.Requests())
	}
	replayed := func(since int, before map[string]bool) int {
		n := 0
		for _, r := range billingRequests(w.stripe.Fake.Requests()[since:]) {
			if before[r.IdempotencyKey] {
				n++
			}
		}
		return n
	}
	const batch, inFlight = billing.DefaultFlushRows, 4
	first, done1 := killAt(1000, 0)
	mark := len(w.stripe.Fake.Requests())
	_, done2 := killAt(first+600, 3*time.Second)
	if n := replayed(mark, done1); n > 2*batch+inFlight {
		t.Errorf("after a kill at %d accepted events the next run replayed %d requests, want at most %d", first, n, 2*batch+inFlight)
	} else {
		t.Logf("kill at %d accepted events: %d requests replayed", first, n)
	}
	mark = len(w.stripe.Fake.Requests())
	p := w.pusher(t, nil, nil)
	push(t, p)
	if n := replayed(mark, done2); n > inFlight {
		t.Errorf("after 3 s stalled the next run replayed %d requests, want at most %d (outcomes flush every %v)", n, inFlight, billing.DefaultFlushEvery)
	}
	from, to := window()
	testworld.DiffCells(t, "fake Stripe after kills", w.stripeHolds(), w.truth(from, to))
	identifierValues(t, w.stripe.Fake.Requests())
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
