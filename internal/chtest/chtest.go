// Package chtest gives tests a real ClickHouse database of their own: a fresh, uniquely named
// database per test on the server at $NEONMETER_TEST_CLICKHOUSE_ADDR (default 127.0.0.1:19000),
// dropped when the test passes and kept, with its name logged, when it fails.
//
// An unreachable server fails the test: tests of storage must never pass by not running.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/schema"
)

// EnvAddr names the variable holding the test server's native address.
const EnvAddr = "NEONMETER_TEST_CLICKHOUSE_ADDR"

// DefaultAddr is the address of the server scripts/clickhouse.sh starts.
const DefaultAddr = "127.0.0.1:19000"

// cleanupTimeout bounds dropping a database after the test; the test's own context is already
// cancelled by then.
const cleanupTimeout = 30 * time.Second

// Addr returns the test server's address.
func Addr() string {
	if a := os.Getenv(EnvAddr); a != "" {
		return a
	}
	return DefaultAddr
}

// New connects to the test server, creates a fresh database, migrates it and returns the
// connection and the database name.
func New(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn := Connect(t)
	db := Database(t, conn)
	if _, err := schema.Migrate(t.Context(), conn, db, Logger(t)); err != nil {
		t.Fatalf("chtest: migrate %s: %v", db, err)
	}
	return conn, db
}

// Connect connects to the test server, closing the connection when the test ends. It fails the
// test, saying how to start the server, when none answers.
func Connect(t testing.TB) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := Open(ctx)
	if err != nil {
		t.Fatalf("chtest: ClickHouse is required: %v\nstart it with `make clickhouse` (or point %s at a server)", err, EnvAddr)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Open connects to the test server; a crash test's child process, which has no *testing.T,
// connects with it too.
func Open(ctx context.Context) (driver.Conn, error) {
	return schema.Open(ctx, schema.Options{Addr: Addr(), DialTimeout: 5 * time.Second})
}

// Database returns the name of a database unique to this test, not yet created. It is dropped
// (on every replica, for a connection to a cluster) when the test passes and kept for
// inspection when it fails.
func Database(t testing.TB, conn driver.Conn) string {
	t.Helper()
	db := uniqueName(t.Name())
	drop, where := "DROP DATABASE IF EXISTS "+db, Addr()
	if c := schema.ClusterOf(conn); c != "" {
		drop, where = drop+" ON CLUSTER "+c, "cluster "+c
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chtest: keeping database %s on %s for inspection", db, where)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := conn.Exec(ctx, drop); err != nil {
			t.Errorf("chtest: drop database %s: %v", db, err)
		}
	})
	return db
}

// Count runs query, which selects one number (a count()), and returns it; an error fails the test.
func Count(t testing.TB, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Totals runs q, a select of (project, metric, total) rows, and returns the totals by
// (project, metric), an empty map for no rows; an error fails the test.
func Totals(t testing.TB, conn driver.Conn, db string, q schema.Query) map[[2]string]uint64 {
	t.Helper()
	out := map[[2]string]uint64{}
	err := q.Each(t.Context(), conn, db, func(row schema.Row) error {
		var (
			project, metric string
			total           uint64
		)
		err := row.Scan(&project, &metric, &total)
		out[[2]string{project, metric}] = total
		return err
	})
	if err != nil {
		t.Fatalf("totals: %v", err)
	}
	return out
}

// Logger returns a logger writing to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// uniqueName builds "test_<test name>_<random>" from letters, digits and underscores, short
// enough for ClickHouse's file names.
func uniqueName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 60 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix))
	return b.String()
}
