package schema

import (
	"context"
	"io/fs"
	"log/slog"
	"testing"
	"testing/fstest"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// BuiltinMigrationFiles returns the embedded migration files by name; an error fails the test.
func BuiltinMigrationFiles(t testing.TB) map[string]string {
	t.Helper()
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatalf("migration files: %v", err)
	}
	out := map[string]string{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("migration files: %v", err)
	}
	return out
}

// MigrateFiles runs Migrate with the given migration files instead of the built-in ones.
func MigrateFiles(ctx context.Context, conn driver.Conn, db string, files map[string]string, log *slog.Logger) (int, error) {
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	migs, err := loadMigrations(fsys)
	if err != nil {
		return 0, err
	}
	return migrate(ctx, conn, db, migs, log)
}
