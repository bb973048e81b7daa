package chtest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// helperEnv makes a test of this file play the inner test that a parent test runs in a child
// process, to watch what happens when a test fails.
const helperEnv = "CHTEST_HELPER"

func databaseExists(t *testing.T, conn driver.Conn, db string) bool {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		t.Fatalf("look up database: %v", err)
	}
	return n == 1
}

func TestNew(t *testing.T) {
	conn, db := chtest.New(t)
	if !schema.ValidDatabase(db) || !strings.HasPrefix(db, "test_testnew_") {
		t.Fatalf("database name %q", db)
	}
	if !databaseExists(t, conn, db) {
		t.Fatalf("database %s was not created", db)
	}
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+db+".usage_hourly").Scan(&n); err != nil {
		t.Fatalf("database %s is not migrated: %v", db, err)
	}
	if applied, err := schema.Migrate(t.Context(), conn, db, nil); err != nil || applied != 0 {
		t.Fatalf("migrate again = %d, %v; want 0, nil", applied, err)
	}
}

func TestDatabase_UniqueAndDroppedOnPass(t *testing.T) {
	conn := chtest.Connect(t)
	var names []string
	for range 2 {
		t.Run("same name", func(t *testing.T) {
			_, db := chtest.New(t)
			names = append(names, db)
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("names %v, want two different ones", names)
	}
	for _, db := range names {
		if databaseExists(t, conn, db) {
			t.Fatalf("database %s of a passed test was kept", db)
		}
	}
	// Same test, same name prefix: the random suffix still keeps them apart. The long test
	// name is cut short enough for ClickHouse's file names.
	a, b := chtest.Database(t, conn), chtest.Database(t, conn)
	if a == b || len(a) > 80 || !schema.ValidDatabase(a) {
		t.Fatalf("database names %q and %q", a, b)
	}
}

// runSelf runs this test again in a child process playing the helper role.
func runSelf(t *testing.T, role string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+role), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDatabase_KeptWhenTestFails(t *testing.T) {
	if os.Getenv(helperEnv) == "keep" {
		_, db := chtest.New(t)
		t.Errorf("deliberate failure with database %s", db)
		return
	}
	out, err := runSelf(t, "keep")
	if err == nil {
		t.Fatalf("the failing child passed:\n%s", out)
	}
	m := regexp.MustCompile(`keeping database (test_\w+) on`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("child output does not name a kept database:\n%s", out)
	}
	conn := chtest.Connect(t)
	if !databaseExists(t, conn, m[1]) {
		t.Fatalf("database %s of the failed test is gone", m[1])
	}
	if err := conn.Exec(t.Context(), "DROP DATABASE "+m[1]); err != nil {
		t.Fatalf("drop %s: %v", m[1], err)
	}
}

func TestConnect_FailsWithoutServer(t *testing.T) {
	if os.Getenv(helperEnv) == "unreachable" {
		chtest.New(t)
		return
	}
	out, err := runSelf(t, "unreachable", chtest.EnvAddr+"=127.0.0.1:1")
	if err == nil {
		t.Fatalf("the child passed without a server:\n%s", out)
	}
	if !strings.Contains(out, "--- FAIL") || strings.Contains(out, "--- SKIP") || !strings.Contains(out, "make clickhouse") {
		t.Fatalf("want a failure telling to run make clickhouse, got:\n%s", out)
	}
}

// Without the cluster a cluster test fails in CI and is skipped elsewhere, saying how to start
// the cluster.
func TestNeedCluster_FailsInCI(t *testing.T) {
	if os.Getenv(helperEnv) == "nocluster" {
		chtest.NeedCluster(t)
		return
	}
	out, err := runSelf(t, "nocluster", chtest.EnvClusterAddrs+"=", "CI=true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "make cluster") {
		t.Fatalf("CI=true without the cluster: want a failure telling to run make cluster, got %v:\n%s", err, out)
	}
	out, err = runSelf(t, "nocluster", chtest.EnvClusterAddrs+"=", "CI=")
	if err != nil || !strings.Contains(out, "--- SKIP") {
		t.Fatalf("without CI and without the cluster: want a skip, got %v:\n%s", err, out)
	}
}
