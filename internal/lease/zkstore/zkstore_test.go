package zkstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
)

func holder(run string) lease.Holder {
	return lease.Holder{Host: "zk-test", PID: os.Getpid(), RunID: run}
}

// A ZooKeeper that does not answer fails leases at once, naming the ensemble: no lease is taken,
// no step runs, readiness says why.
func TestStore_ZooKeeperDown(t *testing.T) {
	addr := crashtest.FreeAddr(t)
	s, err := zkstore.Open(zkstore.Options{Addrs: []string{addr}, Root: "/neonmeter", Database: "db", SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("ping of a ZooKeeper that is down: %v, want an error naming %s", err, addr)
	}
	_, err = lease.Acquire(ctx, s, "billing", lease.Options{TTL: 6 * time.Second, Holder: holder("run-a")})
	var held *lease.HeldError
	if err == nil || errors.As(err, &held) || !strings.Contains(err.Error(), "zookeeper "+addr) {
		t.Fatalf("acquire with ZooKeeper down: %v, want a failure naming the ensemble", err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("the failures took %s: they must not wait for the caller's deadline", took)
	}
}

// An acquisition after an expiry records when the superseded generation ended by the
// leader's clock (its last heartbeat plus its TTL), and comes no earlier.
func TestStore_HistoryOfAnExpiry(t *testing.T) {
	s := leasetest.ZooKeeper(t, "db")
	f := leasetest.Wrap(s)
	a, err := lease.Acquire(t.Context(), f, "enforcement", lease.Options{TTL: 3 * time.Second, Holder: holder("run-a")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // one renewal
	f.CutOff(errors.New("partitioned"))
	before, err := s.Status(t.Context(), "enforcement")
	if err != nil {
		t.Fatal(err)
	}
	if before.Free || before.LastHeartbeat.Equal(before.Since) {
		t.Fatalf("status of a renewed lease: %+v", before)
	}
	b, err := lease.Acquire(t.Context(), s, "enforcement", lease.Options{TTL: time.Minute, Holder: holder("run-b"), Wait: true, PollEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(context.Background())
	if err := a.Check(t.Context()); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the partitioned holder may still act: %v", err)
	}
	events, err := s.Events(t.Context(), "enforcement", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("history %+v, want two acquisitions", events)
	}
	e := events[0]
	wantEnd := before.LastHeartbeat.Add(3 * time.Second)
	if e.Kind != lease.EventAcquired || e.Generation != 2 || e.Holder.RunID != "run-b" || !e.PreviousEnd.Equal(wantEnd) || e.At.Before(wantEnd) {
		t.Fatalf("the takeover's event %+v; want generation 2 of run-b, previous end %s, no earlier", e, wantEnd)
	}
	if !strings.Contains(e.Superseded, "generation 1") || !strings.Contains(e.Superseded, "run-a") || !strings.Contains(e.Superseded, "expired") {
		t.Fatalf("superseded: %q", e.Superseded)
	}
}

// Pruning keeps the newest entries of a job's history.
func TestStore_PruneKeepsTheNewest(t *testing.T) {
	s := leasetest.ZooKeeper(t, "db")
	for i := range 12 {
		l, err := lease.Acquire(t.Context(), s, "retention", lease.Options{TTL: time.Minute, Holder: holder(fmt.Sprintf("run-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	s.Prune(t.Context(), "retention", 5)
	events, err := s.Events(t.Context(), "retention", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s %d", e.Kind, e.Generation))
	}
	if want := "released 12,acquired 12,released 11,acquired 11,released 10"; strings.Join(got, ",") != want {
		t.Fatalf("after pruning to 5: %v, want %s", got, want)
	}
}
