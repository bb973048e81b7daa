package lease_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/chstore"
)

// envChildDB names the database a child holder takes its lease in.
const envChildDB = "NEONMETER_TEST_LEASE_DB"

func TestMain(m *testing.M) { crashtest.Main(m, childHolder) }

// childHolder takes the billing lease, says so, and holds it (renewing) until killed.
func childHolder() error {
	ctx := context.Background()
	conn, err := chtest.Open(ctx)
	if err != nil {
		return err
	}
	l, err := lease.Acquire(ctx, chstore.New(conn, os.Getenv(envChildDB), nil), "billing",
		lease.Options{TTL: 3 * time.Second, Holder: lease.Holder{Host: "test-host", PID: os.Getpid(), RunID: "run-child"}})
	if err != nil {
		return err
	}
	fmt.Printf("ACQUIRED generation %d\n", l.Generation())
	<-ctx.Done() // never: the parent kills the process
	return nil
}

// A holder killed with SIGKILL leaves its lease behind; it is taken over once its TTL ran out
// on the server's clock, not before.
func TestLease_HolderKilledExpires(t *testing.T) {
	conn, db := chtest.New(t)
	b := chstore.New(conn, db, nil)
	child := crashtest.Start(t, envChildDB+"="+db)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(child.Output(), "ACQUIRED"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			child.Kill()
			t.Fatalf("the child did not take the lease:\n%s", child.Output())
		}
	}
	// Held well past the TTL by renewals, then killed.
	time.Sleep(4 * time.Second)
	opts := lease.Options{TTL: 3 * time.Second, Holder: holder("run-parent")}
	if _, err := lease.Acquire(t.Context(), b, "billing", opts); !isHeldBy(err, "run-child") {
		t.Fatalf("while the child renews: %v, want held by run-child", err)
	}
	child.Kill()
	killed := time.Now()
	var won *lease.Lease
	for won == nil {
		l, err := lease.Acquire(t.Context(), b, "billing", opts)
		switch {
		case err == nil:
			won = l
		case !isHeldBy(err, "run-child"):
			t.Fatalf("after the kill: %v", err)
		case time.Since(killed) > 10*time.Second:
			t.Fatalf("the dead holder's lease never expired: %v", err)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer won.Release(context.Background())
	// The child's last heartbeat was at most TTL/3 before the kill.
	if took := time.Since(killed); took < 2*time.Second {
		t.Fatalf("taken over %s after the kill: before the TTL (3 s) since the last heartbeat", took)
	}
	if won.Generation() != 2 {
		t.Fatalf("generation %d, want 2", won.Generation())
	}
}

func isHeldBy(err error, run string) bool {
	var held *lease.HeldError
	return errors.As(err, &held) && held.Holder.RunID == run
}
