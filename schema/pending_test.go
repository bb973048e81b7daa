package schema_test

import (
	"testing"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// Pending lists every migration for a database that does not exist or has no tables, and none
// once Migrate ran; it creates nothing itself.
func TestPending_UnmigratedAndMigrated(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	all, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	pending, err := schema.Pending(t.Context(), conn, db)
	if err != nil || len(pending) != len(all) {
		t.Fatalf("missing database: %d pending of %d, %v", len(pending), len(all), err)
	}
	if err := conn.Exec(t.Context(), "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	if pending, err := schema.Pending(t.Context(), conn, db); err != nil || len(pending) != len(all) {
		t.Fatalf("empty database: %d pending of %d, %v", len(pending), len(all), err)
	}
	if _, err := schema.Migrate(t.Context(), conn, db, chtest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if pending, err := schema.Pending(t.Context(), conn, db); err != nil || len(pending) != 0 {
		t.Fatalf("migrated database: %d pending, %v", len(pending), err)
	}
}
