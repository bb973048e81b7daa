package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	leasestore "github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
)

// Each bad lease setting is refused naming its variable; a cluster needs the ZooKeeper backend.
func TestConfig_LeaseSettings(t *testing.T) {
	zk := map[string]string{"NEONMETER_LEASE_BACKEND": "zookeeper", "NEONMETER_ZOOKEEPER_ADDRS": "zk1:2181,zk2:2181"}
	for _, c := range []struct {
		name string
		env  map[string]string
		bad  string // the variable the error names; "" when valid
	}{
		{"default: ClickHouse", nil, ""},
		{"unknown backend", map[string]string{"NEONMETER_LEASE_BACKEND": "etcd"}, "NEONMETER_LEASE_BACKEND"},
		{"cluster on the ClickHouse backend", map[string]string{"NEONMETER_CLICKHOUSE_CLUSTER": "c1", "NEONMETER_CLICKHOUSE_ADDR": "a:9000,b:9000"}, "NEONMETER_LEASE_BACKEND"},
		{"zookeeper", zk, ""},
		{"zookeeper without addresses", map[string]string{"NEONMETER_LEASE_BACKEND": "zookeeper"}, "NEONMETER_ZOOKEEPER_ADDRS"},
		{"zookeeper, bad address", with(zk, "NEONMETER_ZOOKEEPER_ADDRS", "zk1"), "NEONMETER_ZOOKEEPER_ADDRS"},
		{"zookeeper, relative root", with(zk, "NEONMETER_ZOOKEEPER_ROOT", "neonmeter"), "NEONMETER_ZOOKEEPER_ROOT"},
		{"zookeeper, its own tree", with(zk, "NEONMETER_ZOOKEEPER_ROOT", "/zookeeper/x"), "NEONMETER_ZOOKEEPER_ROOT"},
		{"session past half the TTL", with(with(zk, "NEONMETER_ZOOKEEPER_SESSION_TIMEOUT", "20s"), "NEONMETER_LEASE_TTL", "30s"), "NEONMETER_ZOOKEEPER_SESSION_TIMEOUT"},
		{"session too short", with(zk, "NEONMETER_ZOOKEEPER_SESSION_TIMEOUT", "100ms"), "NEONMETER_ZOOKEEPER_SESSION_TIMEOUT"},
		{"cluster on ZooKeeper", with(with(zk, "NEONMETER_CLICKHOUSE_CLUSTER", "c1"), "NEONMETER_CLICKHOUSE_ADDR", "a:9000,b:9000"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			configEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig()
			switch {
			case c.bad == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
				t.Fatalf("got %v, want an error naming %s", err, c.bad)
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		if mk != k {
			out[mk] = mv
		}
	}
	return out
}

// leaseScene is a migrated database and, for the ZooKeeper backend, a root of the test's own,
// with the environment of a command using them.
type leaseScene struct {
	db      string
	backend lease.Backend
}

func newLeaseScene(t *testing.T, backend string) leaseScene {
	t.Helper()
	clearEnv(t)
	conn, db := chtest.New(t)
	t.Setenv("NEONMETER_CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("NEONMETER_CLICKHOUSE_DATABASE", db)
	if backend == leaseBackendClickHouse {
		return leaseScene{db: db, backend: leasestore.New(conn, db, nil)}
	}
	addrs, root := leasetest.ZooKeeperRoot(t)
	for k, v := range map[string]string{"NEONMETER_LEASE_BACKEND": "zookeeper", "NEONMETER_ZOOKEEPER_ADDRS": strings.Join(addrs, ","),
		"NEONMETER_ZOOKEEPER_ROOT": root, "NEONMETER_ZOOKEEPER_SESSION_TIMEOUT": leasetest.ZooKeeperSession.String()} {
		t.Setenv(k, v)
	}
	zs, err := zkstore.Open(zkstore.Options{Addrs: addrs, Root: root, Database: db, SessionTimeout: leasetest.ZooKeeperSession})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zs.Close)
	return leaseScene{db: db, backend: zs}
}

// `neonmeter leases` names each job's holder (host, pid, run id, times) or says it is free or
// released, and --history lists who held it, on either backend.
func TestLeases_CommandShowsHolders(t *testing.T) {
	for _, backend := range []string{leaseBackendClickHouse, leaseBackendZooKeeper} {
		t.Run(backend, func(t *testing.T) {
			s := newLeaseScene(t, backend)
			ctx := t.Context()
			l, err := lease.Acquire(ctx, s.backend, jobBilling, lease.Options{TTL: time.Minute, Holder: otherHolder})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release(context.Background())
			out := mustRun(t, ctx, "leases")
			if !strings.Contains(out, "leases in "+map[string]string{leaseBackendClickHouse: "ClickHouse", leaseBackendZooKeeper: "ZooKeeper"}[backend]) {
				t.Fatalf("the output does not say where the leases are:\n%s", out)
			}
			billing := lineOf(out, "billing ")
			for _, want := range []string{"held", " 1 ", "other-host", "4242", otherHolder.RunID} {
				if !strings.Contains(billing, want) {
					t.Fatalf("billing's line does not name %q:\n%s", want, out)
				}
			}
			if f := strings.Fields(lineOf(out, "enforcement ")); len(f) < 2 || f[1] != "free" {
				t.Fatalf("enforcement is not free:\n%s", out)
			}
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
			out = mustRun(t, ctx, "leases", "--job", "billing", "--history", "5")
			if f := strings.Fields(lineOf(out, "billing ")); len(f) < 2 || f[1] != "released" {
				t.Fatalf("billing after the release:\n%s", out)
			}
			if strings.Contains(out, "enforcement") || !strings.Contains(out, " acquired ") || !strings.Contains(out, " released ") {
				t.Fatalf("--job billing --history 5:\n%s", out)
			}
			if code, _, errOut := run(t, ctx, "leases", "--job", "payroll"); code != exitUsage || !strings.Contains(errOut, "billing") {
				t.Fatalf("an unknown job: exit %d %q", code, errOut)
			}
		})
	}
}

// lineOf returns the first line of out starting with prefix.
func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// With ZooKeeper down no lease can be taken: a command exits 1 naming the setting, before it
// sends anything.
func TestCommands_ZooKeeperDownTakeNoLease(t *testing.T) {
	s := newBillingScene(t)
	for k, v := range map[string]string{"NEONMETER_LEASE_BACKEND": "zookeeper", "NEONMETER_ZOOKEEPER_ADDRS": crashtest.FreeAddr(t),
		"NEONMETER_ZOOKEEPER_SESSION_TIMEOUT": "2s"} {
		t.Setenv(k, v)
	}
	start := time.Now()
	code, _, errOut := run(t, t.Context(), "billing", "push")
	if code != exitFailure || !strings.Contains(errOut, "ZooKeeper (NEONMETER_ZOOKEEPER_ADDRS)") || !strings.Contains(errOut, "billing") {
		t.Fatalf("billing push with ZooKeeper down: exit %d\n%s", code, errOut)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("the refusal took %s", took)
	}
	if events := s.meterEvents(); len(events) != 0 {
		t.Fatalf("%d meter events sent without a lease", len(events))
	}
	t.Logf("billing push with ZooKeeper down: %s", strings.TrimSpace(errOut))
}
