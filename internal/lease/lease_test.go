package lease_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
)

const shortTTL = 2 * time.Second

// store is a lease backend the tests run against: every backend keeps the same guarantees.
type store interface {
	lease.Backend
	lease.Inspector
}

// subject is one backend opened for a test, with the environment a child process needs to
// open the same one (crash_test.go).
type subject struct {
	store
	childEnv []string
}

// backends are the backends under test, each opened fresh for a test.
var backends = []struct {
	name string
	open func(t *testing.T) subject
}{
	{"clickhouse", func(t *testing.T) subject {
		conn, db := chtest.New(t)
		return subject{store: chstore.New(conn, db, nil), childEnv: []string{envChildBackend + "=clickhouse", envChildDB + "=" + db}}
	}},
	{"zookeeper", func(t *testing.T) subject {
		addrs, root := leasetest.ZooKeeperRoot(t)
		s := openZooKeeper(t, addrs, root, leasetest.ZooKeeperSession)
		return subject{store: s, childEnv: []string{envChildBackend + "=zookeeper", envChildRoot + "=" + root}}
	}},
}

// each runs fn once per backend, as a subtest named after it.
func each(t *testing.T, fn func(t *testing.T, b subject)) {
	for _, c := range backends {
		t.Run(c.name, func(t *testing.T) { fn(t, c.open(t)) })
	}
}

func openZooKeeper(t testing.TB, addrs []string, root string, session time.Duration) *zkstore.Store {
	t.Helper()
	s, err := zkstore.Open(zkstore.Options{Addrs: addrs, Root: root, Database: "db", SessionTimeout: session})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func holder(run string) lease.Holder {
	return lease.Holder{Host: "test-host", PID: os.Getpid(), RunID: run}
}

func acquire(t *testing.T, b lease.Backend, job, run string, ttl time.Duration) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(t.Context(), b, job, lease.Options{TTL: ttl, Holder: holder(run), Logger: chtest.Logger(t)})
	if err != nil {
		t.Fatalf("acquire %s for %s: %v", job, run, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

// heldBy asserts err is a *HeldError naming run.
func heldBy(t *testing.T, err error, run string) *lease.HeldError {
	t.Helper()
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Holder.RunID != run {
		t.Fatalf("got %v, want the lease held by %s", err, run)
	}
	if msg := err.Error(); !strings.Contains(msg, "test-host") || !strings.Contains(msg, run) || !strings.Contains(msg, fmt.Sprint(os.Getpid())) {
		t.Fatalf("the refusal does not name host, pid and run: %s", msg)
	}
	return held
}

// Many processes try at once: each round exactly one wins, the others are told who holds it.
func TestAcquire_ExactlyOneOfManyContenders(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		const contenders, rounds = 12, 8
		for round := range rounds {
			winners, refused := contend(t, b, contenders, func(i int) string { return fmt.Sprintf("run-%d-%d", round, i) })
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners, want exactly 1 (refusals: %v)", round, len(winners), refused)
			}
			w := winners[0]
			if w.Generation() != uint64(round+1) {
				t.Fatalf("round %d: generation %d, want %d", round, w.Generation(), round+1)
			}
			for _, err := range refused {
				var held *lease.HeldError
				if !errors.As(err, &held) {
					t.Fatalf("round %d: a loser failed with %v, want a *HeldError", round, err)
				}
			}
			if err := w.Check(t.Context()); err != nil {
				t.Fatalf("round %d: the winner's check: %v", round, err)
			}
			if err := w.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// The history has every acquisition and release, in order, with nothing in between.
		events, err := b.Events(t.Context(), "billing", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2*rounds {
			t.Fatalf("%d history events, want %d", len(events), 2*rounds)
		}
		for i, e := range events {
			gen, kind := uint64(rounds-i/2), lease.EventReleased
			if i%2 == 1 {
				kind = lease.EventAcquired
			}
			if e.Generation != gen || e.Kind != kind {
				t.Fatalf("history event %d (newest first) is %s %d, want %s %d", i, e.Kind, e.Generation, kind, gen)
			}
		}
	})
}

// contend starts n contenders at once for the billing lease and returns the winners and the
// losers' errors.
func contend(t *testing.T, b lease.Backend, n int, run func(i int) string) (winners []*lease.Lease, refused []error) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			l, err := lease.Acquire(t.Context(), b, "billing", lease.Options{TTL: time.Minute, Holder: holder(run(i))})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, err)
				return
			}
			winners = append(winners, l)
		})
	}
	close(start)
	wg.Wait()
	return winners, refused
}

// A holder that stops renewing fails Check first; the lease is free once its TTL passed by the
// backend's clock, and not before.
func TestLease_ExpiresWithoutRenewal(t *testing.T) {
	each(t, func(t *testing.T, real subject) {
		f := leasetest.Wrap(real)
		a := acquire(t, f, "enforcement", "run-a", shortTTL)
		f.CutOff(errors.New("network unreachable"))
		acquiredAt := time.Now()

		_, err := lease.Acquire(t.Context(), real, "enforcement", lease.Options{TTL: shortTTL, Holder: holder("run-b")})
		heldBy(t, err, "run-a")
		var b *lease.Lease
		for b == nil {
			l, err := lease.Acquire(t.Context(), real, "enforcement", lease.Options{TTL: shortTTL, Holder: holder("run-b")})
			switch {
			case err == nil:
				b = l
			case time.Since(acquiredAt) > 4*shortTTL:
				t.Fatalf("the lease never expired: %v", err)
			default:
				heldBy(t, err, "run-a")
				time.Sleep(50 * time.Millisecond)
			}
		}
		defer b.Release(context.Background())
		if took := time.Since(acquiredAt); took < shortTTL {
			t.Fatalf("taken over %s after the holder's last heartbeat, before its TTL %s", took, shortTTL)
		}
		if err := a.Check(t.Context()); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("the expired holder's check = %v, want ErrLost", err)
		}
		if cause := context.Cause(a.Context()); !errors.Is(cause, lease.ErrLost) {
			t.Fatalf("the expired holder's context: cause %v, want ErrLost", cause)
		}
		if err := b.Check(t.Context()); err != nil {
			t.Fatalf("the new holder's check: %v", err)
		}
		st, err := real.Status(t.Context(), "enforcement")
		if err != nil {
			t.Fatal(err)
		}
		if st.Free || st.Generation != b.Generation() || st.Holder.RunID != "run-b" || !st.Expires.After(st.Now) {
			t.Fatalf("status after the takeover: %+v", st)
		}
	})
}

// Renewal keeps a lease held well past its TTL.
func TestLease_RenewalKeepsItHeld(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		a := acquire(t, b, "accounts", "run-a", shortTTL)
		for deadline := time.Now().Add(3 * shortTTL); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if err := a.Check(t.Context()); err != nil {
				t.Fatalf("check while renewing: %v", err)
			}
			_, err := lease.Acquire(t.Context(), b, "accounts", lease.Options{TTL: shortTTL, Holder: holder("run-b")})
			heldBy(t, err, "run-a")
		}
	})
}

// Release hands the lease on at once; the releaser's checks fail from then on.
func TestLease_Release(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		st, err := b.Status(t.Context(), "retention")
		if err != nil || !st.Free || st.Generation != 0 {
			t.Fatalf("status of a lease never taken: %+v, %v", st, err)
		}
		a := acquire(t, b, "retention", "run-a", time.Minute)
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := a.Check(t.Context()); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("check after release = %v, want ErrLost", err)
		}
		if st, err := b.Status(t.Context(), "retention"); err != nil || !st.Free || !st.Released || st.Holder.RunID != "run-a" {
			t.Fatalf("status after the release: %+v, %v", st, err)
		}
		next := acquire(t, b, "retention", "run-b", time.Minute)
		if next.Generation() != a.Generation()+1 {
			t.Fatalf("generation %d after %d", next.Generation(), a.Generation())
		}
		// The history says who held it, in order, and that run-b superseded a released lease.
		events, err := b.Events(t.Context(), "retention", 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			got = append(got, fmt.Sprintf("%s %d %s", e.Kind, e.Generation, e.Holder.RunID))
		}
		if want := "acquired 2 run-b,released 1 run-a,acquired 1 run-a"; strings.Join(got, ",") != want {
			t.Fatalf("lease history %v, want %s", got, want)
		}
		if s := events[0].Superseded; !strings.Contains(s, "generation 1") || !strings.Contains(s, "run-a") || !strings.Contains(s, "released") {
			t.Fatalf("the new holder's event says it superseded %q", s)
		}
		if end := events[0].PreviousEnd; !end.IsZero() && (end.After(events[0].At) || end.Before(events[2].At)) {
			t.Fatalf("generation 1 ended at %s, outside [%s, %s]", end, events[2].At, events[0].At)
		}
		// Other jobs are independent.
		acquire(t, b, "billing", "run-c", time.Minute)
	})
}

// With Wait, Acquire polls until the holder releases; without a release it gives up with
// the context, still naming the holder.
func TestAcquire_Wait(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		a := acquire(t, b, "billing", "run-a", time.Minute)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := lease.Acquire(ctx, b, "billing", lease.Options{TTL: time.Minute, Holder: holder("run-b"), Wait: true, PollEvery: 100 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting past the deadline: %v", err)
		}
		heldBy(t, err, "run-a")

		got := make(chan error, 1)
		go func() {
			l, err := lease.Acquire(t.Context(), b, "billing", lease.Options{TTL: time.Minute, Holder: holder("run-b"), Wait: true, PollEvery: 100 * time.Millisecond})
			if err == nil {
				err = l.Release(context.Background())
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("the waiter got the lease while it was held: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		released := time.Now()
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("the waiter: %v", err)
		}
		if took := time.Since(released); took > 2*time.Second {
			t.Fatalf("the waiter took %s after the release", took)
		}
	})
}

// A holder paused in the middle of a renewal until after its lease ran out stays fenced when
// the renewal then succeeds (the heartbeat reached the backend only after the pause): it
// cannot revive a lease the backend may already have handed on meanwhile.
func TestLease_PausedPastTTLStaysFenced(t *testing.T) {
	each(t, func(t *testing.T, real subject) {
		f := leasetest.Wrap(real)
		f.Pause() // the first renewal (at TTL/3) stalls
		acquired := time.Now()
		a := acquire(t, f, "billing", "run-a", shortTTL)
		// Valid until TTL less the margin (1.6 s); the stalled renewal started at about 0.67 s and
		// would, if accepted, extend it to about 2.27 s. Resume it after 1.75 s, check before 2.27 s.
		time.Sleep(time.Until(acquired.Add(1750 * time.Millisecond)))
		f.Resume()
		time.Sleep(150 * time.Millisecond)
		err := a.Check(t.Context())
		if since := time.Since(acquired); since > 2200*time.Millisecond {
			t.Fatalf("the test itself stalled (%s); rerun", since)
		}
		if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "not renewed") {
			t.Fatalf("check after a renewal that outlived the lease = %v, want ErrLost (not renewed)", err)
		}
		if a.Context().Err() == nil {
			t.Fatal("the lost lease's context is not cancelled")
		}
		time.Sleep(shortTTL)
		if err := a.Check(t.Context()); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("a loss must be final: %v", err)
		}
	})
}

// A newer generation is noticed by the holder's next check against the backend, even while its
// own clock says the lease is still good: here the backend judges the lease by 2 s while the
// holder counts 9 s (a backend clock running fast), so another holder takes over at 2 s.
func TestLease_NewerGenerationDetected(t *testing.T) {
	each(t, func(t *testing.T, real subject) {
		const ttl = 9 * time.Second // checks ask the backend every 3 s
		f := leasetest.Wrap(real)
		f.StorageTTL(shortTTL)
		a := acquire(t, f, "billing", "run-a", ttl)
		if err := a.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.CutOff(errors.New("network unreachable")) // its heartbeats would keep the short lease alive
		b, err := lease.Acquire(t.Context(), real, "billing", lease.Options{TTL: time.Minute, Holder: holder("run-b"), Wait: true, PollEvery: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release(context.Background())
		deadline := time.Now().Add(ttl / 2)
		for {
			err := a.Check(t.Context())
			if errors.Is(err, lease.ErrLost) {
				if !strings.Contains(err.Error(), "generation 2") || !strings.Contains(err.Error(), "run-b") {
					t.Fatalf("the loss does not name the newer generation and its holder: %v", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a newer generation went unnoticed for %s (check: %v)", ttl/2, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestAcquire_RefusesBadJobAndTTL(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		for _, job := range []string{"", "Billing", "bill_ing", "billing;drop", strings.Repeat("a", 41)} {
			if _, err := lease.Acquire(t.Context(), b, job, lease.Options{Holder: holder("x")}); err == nil {
				t.Errorf("job %q accepted", job)
			}
		}
		for _, ttl := range []time.Duration{time.Second, -time.Minute, 2 * time.Hour} {
			if _, err := lease.Acquire(t.Context(), b, "billing", lease.Options{TTL: ttl, Holder: holder("x")}); err == nil {
				t.Errorf("TTL %s accepted", ttl)
			}
		}
	})
}
