package schema_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// wantTables are the tables and views the built-in migrations create, sorted.
const wantTables = "account_history,billing_drift,billing_late_adjustments,billing_ledger,billing_reconcile_runs,collection_progress,collection_runs,collection_watermarks,enforcement_at_risk,enforcement_audit,enforcement_breaker,enforcement_state,lease_events,neon_unit_costs,plan_unit_prices,schema_migrations," +
	"usage_coarse,usage_facts,usage_hourly,usage_revisions"

func tables(t *testing.T, conn driver.Conn, db string) []string {
	t.Helper()
	q := schema.Query{Name: "test.tables", Kind: schema.KindSelect, Args: []any{db},
		SQL: "SELECT name FROM system.tables WHERE database = ? ORDER BY name"}
	out, err := schema.All(t.Context(), q, conn, db, func(row schema.Row) (string, error) {
		var name string
		err := row.Scan(&name)
		return name, err
	})
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return out
}

func builtinMigrations(t *testing.T) []schema.Migration {
	t.Helper()
	migs, err := schema.Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return migs
}

func TestMigrate_FreshThenIdempotent(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	migs := builtinMigrations(t)

	n, err := schema.Migrate(t.Context(), conn, db, chtest.Logger(t))
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if n != len(migs) {
		t.Fatalf("first migrate applied %d, want %d", n, len(migs))
	}
	if got := strings.Join(tables(t, conn, db), ","); got != wantTables {
		t.Fatalf("tables = %s, want %s", got, wantTables)
	}

	n, err = schema.Migrate(t.Context(), conn, db, chtest.Logger(t))
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if n != 0 {
		t.Fatalf("second migrate applied %d, want 0", n)
	}

	rows, err := conn.Query(t.Context(), "SELECT version, name, checksum FROM "+db+".schema_migrations FINAL ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var (
			v              uint32
			name, checksum string
		)
		if err := rows.Scan(&v, &name, &checksum); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if i >= len(migs) || int(v) != migs[i].Version || name != migs[i].Name || checksum != migs[i].Checksum {
			t.Fatalf("schema_migrations row %d = %d %s %s, want %+v", i, v, name, checksum, migs[min(i, len(migs)-1)])
		}
	}
	if i != len(migs) {
		t.Fatalf("schema_migrations has %d rows, want %d", i, len(migs))
	}
}

func TestMigrate_Concurrent(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	migs := builtinMigrations(t)

	const runners = 2
	var (
		wg      sync.WaitGroup
		applied [runners]int
		errs    [runners]error
	)
	for i := range runners {
		wg.Go(func() {
			applied[i], errs[i] = schema.Migrate(t.Context(), conn, db, chtest.Logger(t))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	if applied[0]+applied[1] < len(migs) {
		t.Fatalf("runners applied %v, want at least %d together", applied, len(migs))
	}
	q := "SELECT count() FROM " + db + ".schema_migrations FINAL"
	if n := chtest.Count(t, conn, q); n != uint64(len(migs)) {
		t.Fatalf("schema_migrations FINAL has %d rows, want %d", n, len(migs))
	}
	// Once merged, the duplicate rows of racing runners are gone for good. 18.16's OPTIMIZE
	// silently does nothing while a background merge holds the parts, so it is repeated.
	var merged uint64
	for range 50 {
		if err := conn.Exec(t.Context(), "OPTIMIZE TABLE "+db+".schema_migrations FINAL"); err != nil {
			t.Fatalf("optimize: %v", err)
		}
		if merged = chtest.Count(t, conn, "SELECT count() FROM "+db+".schema_migrations"); merged == uint64(len(migs)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if merged != uint64(len(migs)) {
		t.Fatalf("schema_migrations has %d rows after merge, want %d", merged, len(migs))
	}
	if got := strings.Join(tables(t, conn, db), ","); got != wantTables {
		t.Fatalf("tables = %s, want %s", got, wantTables)
	}
	if n, err := schema.Migrate(t.Context(), conn, db, nil); err != nil || n != 0 {
		t.Fatalf("migrate after the race = %d, %v; want 0, nil", n, err)
	}
}

func TestMigrate_ChecksumMismatch(t *testing.T) {
	conn, db := chtest.New(t)
	files := schema.BuiltinMigrationFiles(t)
	files["0001_usage.sql"] += "\n-- edited after it was applied\n"
	n, err := schema.MigrateFiles(t.Context(), conn, db, files, chtest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "0001_usage") || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("migrate with an edited migration = %d, %v; want a checksum error naming 0001_usage", n, err)
	}
	if n != 0 {
		t.Fatalf("applied %d, want 0", n)
	}
}

func TestMigrate_UnknownAppliedVersion(t *testing.T) {
	conn, db := chtest.New(t)
	files := schema.BuiltinMigrationFiles(t)
	files["0099_future.sql"] = "CREATE TABLE IF NOT EXISTS {db}.future (a UInt8) ENGINE = MergeTree ORDER BY a"
	if n, err := schema.MigrateFiles(t.Context(), conn, db, files, nil); err != nil || n != 1 {
		t.Fatalf("migrate a newer build = %d, %v; want 1, nil", n, err)
	}
	if _, err := schema.Migrate(t.Context(), conn, db, nil); err == nil || !strings.Contains(err.Error(), "0099_future") {
		t.Fatalf("older build on a newer schema: err = %v, want one naming 0099_future", err)
	}
}

func TestMigrate_AddColumn(t *testing.T) {
	const addRegion = "-- a later migration\nALTER TABLE {db}.usage_facts{on_cluster} ADD COLUMN region String DEFAULT '';\n"
	withRegion := func(t *testing.T) map[string]string {
		files := schema.BuiltinMigrationFiles(t)
		files["0100_region.sql"] = addRegion
		return files
	}
	hasRegion := func(t *testing.T, conn driver.Conn, db string) {
		t.Helper()
		n := chtest.Count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = 'usage_facts' AND name = 'region'", db)
		if n != 1 {
			t.Fatalf("usage_facts has %d region columns, want 1", n)
		}
	}

	t.Run("applies", func(t *testing.T) {
		conn, db := chtest.New(t)
		if n, err := schema.MigrateFiles(t.Context(), conn, db, withRegion(t), chtest.Logger(t)); err != nil || n != 1 {
			t.Fatalf("migrate = %d, %v; want 1, nil", n, err)
		}
		hasRegion(t, conn, db)
		if n, err := schema.MigrateFiles(t.Context(), conn, db, withRegion(t), nil); err != nil || n != 0 {
			t.Fatalf("migrate again = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("column added by hand before", func(t *testing.T) {
		conn, db := chtest.New(t)
		if err := conn.Exec(t.Context(), "ALTER TABLE "+db+".usage_facts ADD COLUMN region String DEFAULT ''"); err != nil {
			t.Fatalf("add column: %v", err)
		}
		if n, err := schema.MigrateFiles(t.Context(), conn, db, withRegion(t), chtest.Logger(t)); err != nil || n != 1 {
			t.Fatalf("migrate = %d, %v; want 1, nil", n, err)
		}
		hasRegion(t, conn, db)
	})
	t.Run("concurrent on a fresh database", func(t *testing.T) {
		conn := chtest.Connect(t)
		db := chtest.Database(t, conn)
		files := withRegion(t)
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		for i := range errs {
			wg.Go(func() { _, errs[i] = schema.MigrateFiles(t.Context(), conn, db, files, nil) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("runner %d: %v", i, err)
			}
		}
		hasRegion(t, conn, db)
	})
}

func TestMigrate_InvalidDatabase(t *testing.T) {
	conn := chtest.Connect(t)
	for _, db := range []string{"", "neon-meter", "x; DROP DATABASE default", "1abc"} {
		if _, err := schema.Migrate(context.Background(), conn, db, nil); err == nil {
			t.Errorf("migrate %q: want an error", db)
		}
	}
}

// A statement that finds its object already created (by a racing Migrate, or by hand) is not
// an error: the race between two runners' checks and statements ends this way.
func TestMigrate_ToleratesAlreadyExists(t *testing.T) {
	conn, db := chtest.New(t)
	files := schema.BuiltinMigrationFiles(t)
	files["0100_again.sql"] = "CREATE TABLE {db}.usage_facts (a UInt8) ENGINE = Memory;\nCREATE DATABASE {db};\n"
	if n, err := schema.MigrateFiles(t.Context(), conn, db, files, chtest.Logger(t)); err != nil || n != 1 {
		t.Fatalf("migrate = %d, %v; want 1, nil", n, err)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = 'usage_facts' AND name = 'version'", db); n != 1 {
		t.Fatalf("usage_facts was replaced: %d version columns", n)
	}
	// Any other failure still stops Migrate, naming the migration and statement.
	files["0101_broken.sql"] = "CREATE TABLE IF NOT EXISTS {db}.broken (a UInt8) ENGINE = NoSuchEngine ORDER BY a"
	if _, err := schema.MigrateFiles(t.Context(), conn, db, files, nil); err == nil || !strings.Contains(err.Error(), "0101_broken statement 1") {
		t.Fatalf("err = %v, want one naming 0101_broken statement 1", err)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".schema_migrations FINAL WHERE version = 101"); n != 0 {
		t.Fatalf("a failed migration was recorded")
	}
}
