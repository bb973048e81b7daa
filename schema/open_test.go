package schema_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestOpen(t *testing.T) {
	conn, err := schema.Open(t.Context(), schema.Options{Addr: chtest.Addr(), User: "default"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { conn.Close() }) // after chtest drops the database
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.Version.Major == 0 || v.Revision == 0 {
		t.Fatalf("server version %v", v)
	}
	// The neonmeter database need not exist: Open falls back to the server's default database
	// and all SQL is fully qualified.
	db := chtest.Database(t, conn)
	fresh, err := schema.Open(t.Context(), schema.Options{Addr: chtest.Addr(), Database: db})
	if err != nil {
		t.Fatalf("open before database %s exists: %v", db, err)
	}
	t.Cleanup(func() { fresh.Close() })
	if _, err := schema.Migrate(t.Context(), fresh, db, nil); err != nil {
		t.Fatalf("migrate through the fallback connection: %v", err)
	}
	var current string
	if err := fresh.QueryRow(t.Context(), "SELECT currentDatabase()").Scan(&current); err != nil || current == db {
		t.Fatalf("fallback connection's database = %q, %v; want the server's default", current, err)
	}
	// Once it exists, it is the connection's default.
	conn2, err := schema.Open(t.Context(), schema.Options{Addr: chtest.Addr(), Database: db})
	if err != nil {
		t.Fatalf("open with database %s: %v", db, err)
	}
	t.Cleanup(func() { conn2.Close() })
	var n uint64
	if err := conn2.QueryRow(t.Context(), "SELECT count() FROM usage_facts").Scan(&n); err != nil || n != 0 {
		t.Fatalf("unqualified read through the database's connection = %d, %v", n, err)
	}
}

func TestOpen_Errors(t *testing.T) {
	const password = "s3cret-never-printed"
	tests := []struct {
		name string
		o    schema.Options
		want string
	}{
		{"no address", schema.Options{}, "no address"},
		{"nothing listening", schema.Options{Addr: "127.0.0.1:1", DialTimeout: 2 * time.Second}, "127.0.0.1:1"},
		{"wrong password", schema.Options{Addr: chtest.Addr(), User: "default", Password: password}, chtest.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := openFails(t, tt.o, tt.want); strings.Contains(err.Error(), password) {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// openFails opens with o, which must fail with an error containing want, and returns the error.
func openFails(t *testing.T, o schema.Options, want string) error {
	t.Helper()
	conn, err := schema.Open(t.Context(), o)
	if err == nil {
		conn.Close()
		t.Fatalf("open succeeded, want an error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	return err
}
