package lease_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
)

// What a child holder is told: which backend, and where its leases are.
const (
	envChildBackend = "NEONMETER_TEST_LEASE_BACKEND"
	envChildDB      = "NEONMETER_TEST_LEASE_DB"
	envChildRoot    = "NEONMETER_TEST_LEASE_ZK_ROOT"
)

// childTTL is the TTL of the child's lease. Its ZooKeeper session outlives it (childSession):
// a killed holder is superseded by its TTL, not by its session's end.
const (
	childTTL     = 3 * time.Second
	childSession = 10 * time.Second
)

func TestMain(m *testing.M) { crashtest.Main(m, childHolder) }

// childHolder takes the billing lease, says so, and holds it (renewing) until killed. Every
// 50 ms it prints whether it may still act: "CHECK <unix ns> ok" or "... lost".
func childHolder() error {
	ctx := context.Background()
	var b lease.Backend
	switch os.Getenv(envChildBackend) {
	case "zookeeper":
		s, err := zkOpenChild()
		if err != nil {
			return err
		}
		b = s
	default:
		conn, err := chtest.Open(ctx)
		if err != nil {
			return err
		}
		b = chstore.New(conn, os.Getenv(envChildDB), nil)
	}
	l, err := lease.Acquire(ctx, b, "billing",
		lease.Options{TTL: childTTL, Holder: lease.Holder{Host: "test-host", PID: os.Getpid(), RunID: "run-child"}})
	if err != nil {
		return err
	}
	fmt.Printf("ACQUIRED generation %d pid %d\n", l.Generation(), os.Getpid())
	for {
		verdict := "ok"
		if l.Check(ctx) != nil {
			verdict = "lost"
		}
		fmt.Printf("CHECK %d %s\n", time.Now().UnixNano(), verdict)
		time.Sleep(50 * time.Millisecond)
	}
}

// startChild starts a child holder on b's backend and waits until it holds the lease; kill
// ends it (at the latest when the test ends).
func startChild(t *testing.T, b subject) (child *crashtest.Child, kill func()) {
	t.Helper()
	child = crashtest.Start(t, b.childEnv...)
	kill = sync.OnceFunc(child.Kill)
	t.Cleanup(kill)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(child.Output(), "ACQUIRED"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the child did not take the lease:\n%s", child.Output())
		}
	}
	return child, kill
}

// A holder killed with SIGKILL leaves its lease behind; it is taken over once its TTL ran out
// on the backend's clock, not before, and before its ZooKeeper session could end.
func TestLease_HolderKilledExpires(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		_, kill := startChild(t, b)
		// Held well past the TTL by renewals, then killed.
		time.Sleep(4 * time.Second)
		opts := lease.Options{TTL: childTTL, Holder: holder("run-parent")}
		if _, err := lease.Acquire(t.Context(), b, "billing", opts); !isHeldBy(err, "run-child") {
			t.Fatalf("while the child renews: %v, want held by run-child", err)
		}
		kill()
		killed := time.Now()
		won := takeOver(t, b, opts, killed, 8*time.Second)
		defer won.Release(context.Background())
		// The child's last heartbeat was at most TTL/3 before the kill.
		if took := time.Since(killed); took < 2*time.Second {
			t.Fatalf("taken over %s after the kill: before the TTL (3 s) since the last heartbeat", took)
		}
		if won.Generation() != 2 {
			t.Fatalf("generation %d, want 2", won.Generation())
		}
	})
}

// takeOver polls for the lease until it is free, failing the test past limit after since.
func takeOver(t *testing.T, b lease.Backend, opts lease.Options, since time.Time, limit time.Duration) *lease.Lease {
	t.Helper()
	for {
		l, err := lease.Acquire(t.Context(), b, "billing", opts)
		switch {
		case err == nil:
			return l
		case !isHeldBy(err, "run-child"):
			t.Fatalf("while the dead or stopped holder's lease runs out: %v", err)
		case time.Since(since) > limit:
			t.Fatalf("the holder's lease never expired: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A holder process stopped (SIGSTOP) past its TTL is superseded; once continued (SIGCONT) it
// never again says it may act, although its renewal loop runs again.
func TestLease_StoppedHolderFencedAfterResume(t *testing.T) {
	each(t, func(t *testing.T, b subject) {
		child, _ := startChild(t, b)
		pid := childPID(t, child)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		won := takeOver(t, b, lease.Options{TTL: time.Minute, Holder: holder("run-parent")}, stopped, 8*time.Second)
		defer won.Release(context.Background())
		time.Sleep(500 * time.Millisecond)
		resumed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // a renewal (every TTL/3) and many checks after the resume
		after, lost := 0, 0
		sc := bufio.NewScanner(strings.NewReader(child.Output()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "CHECK" {
				continue
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			if time.Unix(0, ns).Before(resumed) {
				continue
			}
			after++
			if f[2] == "lost" {
				lost++
			}
		}
		if after < 10 || lost != after {
			t.Fatalf("after the resume the stopped holder checked %d times, %d of them lost: want all lost\n%s", after, lost, child.Output())
		}
		if err := won.Check(t.Context()); err != nil {
			t.Fatalf("the new holder after the old one resumed: %v", err)
		}
	})
}

// childPID reads the pid the child printed with its acquisition.
func childPID(t *testing.T, child *crashtest.Child) int {
	t.Helper()
	_, rest, _ := strings.Cut(child.Output(), "ACQUIRED generation ")
	var gen, pid int
	if _, err := fmt.Sscanf(rest, "%d pid %d", &gen, &pid); err != nil || pid <= 0 {
		t.Fatalf("the child did not name its pid: %v\n%s", err, child.Output())
	}
	return pid
}

func isHeldBy(err error, run string) bool {
	var held *lease.HeldError
	return errors.As(err, &held) && held.Holder.RunID == run
}

// zkOpenChild opens the parent's ZooKeeper root with a session that outlives the lease's TTL.
func zkOpenChild() (lease.Backend, error) {
	return zkstore.Open(zkstore.Options{Addrs: strings.Split(os.Getenv(leasetest.EnvZooKeeperAddrs), ","), Root: os.Getenv(envChildRoot),
		Database: "db", SessionTimeout: childSession})
}
