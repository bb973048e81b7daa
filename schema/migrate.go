package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/neonmeter/neonmeter/internal/logkey"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered SQL file of migrations/, named NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	// Checksum is the hex SHA-256 of the file. Editing a migration after it was applied is
	// refused: a new migration must carry the change.
	Checksum string
	stmts    []statement
}

// statement is one statement of a migration, still holding its placeholders.
type statement struct {
	sql string
	// addColumn is set when the statement adds a column: 18.16 has no ADD COLUMN IF NOT
	// EXISTS, so Migrate checks system.columns first.
	addColumn *columnRef
}

type columnRef struct{ table, column string }

var (
	migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)
	addColumnStmt = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+\{db\}\.(\w+)(?:\{on_cluster\})?\s+ADD\s+COLUMN\s+(\w+)\s`)
	addColumnWord = regexp.MustCompile(`(?i)\bADD\s+COLUMN\b`)
)

// Migrations returns the migrations built into this binary, oldest first.
func Migrations() ([]Migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return loadMigrations(sub)
}

// Statements returns the migration's statements for database db on one server, in order.
func (m Migration) Statements(db string) ([]string, error) { return m.StatementsOn(db, "") }

// StatementsOn returns the migration's statements for database db on cluster (empty: one
// server) of one shard, in order.
func (m Migration) StatementsOn(db, cluster string) ([]string, error) {
	var out []string
	for i := range m.stmts {
		texts, err := m.statementAt(i, place{db: db, cluster: cluster})
		if err != nil {
			return nil, err
		}
		out = append(out, texts...)
	}
	return out, nil
}

// statementAt renders statement i for place p: one statement, or on a sharded cluster
// possibly several (renderAll).
func (m Migration) statementAt(i int, p place) ([]string, error) {
	texts, err := renderAll(m.stmts[i].sql, p)
	if err != nil {
		return nil, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
	}
	return texts, nil
}

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		m, err := parseMigration(e.Name(), data)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[m.Version]; ok {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), m.Version)
		}
		seen[m.Version] = e.Name()
		migs = append(migs, m)
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].Version < migs[j].Version })
	return migs, nil
}

func parseMigration(file string, data []byte) (Migration, error) {
	parts := migrationName.FindStringSubmatch(file)
	if parts == nil {
		return Migration{}, fmt.Errorf("migration %s: name must look like 0001_name.sql", file)
	}
	version, _ := strconv.Atoi(parts[1])
	if version == 0 {
		return Migration{}, fmt.Errorf("migration %s: version 0 is reserved", file)
	}
	sum := sha256.Sum256(data)
	m := Migration{Version: version, Name: parts[2], Checksum: hex.EncodeToString(sum[:])}
	texts, err := splitStatements(string(data))
	if err != nil {
		return Migration{}, fmt.Errorf("migration %s: %w", file, err)
	}
	if len(texts) == 0 {
		return Migration{}, fmt.Errorf("migration %s: no statements", file)
	}
	for i, text := range texts {
		st := statement{sql: text}
		if n := len(addColumnWord.FindAllString(text, -1)); n > 0 {
			sub := addColumnStmt.FindStringSubmatch(text)
			switch {
			case n > 1 || sub == nil:
				return Migration{}, fmt.Errorf("migration %s statement %d: add columns one per statement, as ALTER TABLE {db}.table{on_cluster} ADD COLUMN name type", file, i+1)
			case strings.EqualFold(sub[2], "IF"):
				return Migration{}, fmt.Errorf("migration %s statement %d: ADD COLUMN IF NOT EXISTS fails on ClickHouse 18.16; Migrate guards ADD COLUMN itself", file, i+1)
			}
			st.addColumn = &columnRef{table: sub[1], column: sub[2]}
		}
		for _, p := range []place{{db: "db"}, {db: "db", cluster: "cluster"}, {db: "db", cluster: "cluster", sharded: true}} {
			if _, err := renderAll(st.sql, p); err != nil {
				return Migration{}, fmt.Errorf("migration %s statement %d: %w", file, i+1, err)
			}
		}
		m.stmts = append(m.stmts, st)
	}
	return m, nil
}

// Migrate brings database up to the migrations built into this binary and returns how many it
// applied. It creates the database if missing and records each applied migration in
// schema_migrations (version, name, checksum, applied_at).
//
// Every statement is idempotent (CREATE … IF NOT EXISTS; ADD COLUMN only after system.columns
// shows the column missing, and "already exists" tolerated), and schema_migrations is a
// ReplacingMergeTree keyed by version read with FINAL, so two Migrate calls racing on the same
// database both succeed and leave one row per version. A migration whose file changed after it
// was applied, or an applied version this binary does not know, is an error, checked before
// anything is applied.
//
// The connection may have any default database: every statement names database explicitly.
func Migrate(ctx context.Context, conn driver.Conn, database string, log *slog.Logger) (applied int, err error) {
	migs, err := Migrations()
	if err != nil {
		return 0, err
	}
	return migrate(ctx, conn, database, migs, log)
}

type appliedMigration struct {
	name, checksum string
}

func migrate(ctx context.Context, conn driver.Conn, db string, migs []Migration, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !ValidDatabase(db) {
		return 0, fmt.Errorf("migrate: database name %q: must be letters, digits and underscores", db)
	}
	log = log.With(logkey.Component, "migrate", logkey.Database, db)
	// The database and schema_migrations are created only when missing: on a cluster DDL waits
	// for every replica, so a migrate with nothing to do must not depend on all being up.
	done, err := appliedMigrations(ctx, conn, db)
	if missingSchema(err) {
		for _, q := range []Query{createDatabaseQuery(), createMigrationsTableQuery()} {
			if err := execIdempotent(ctx, conn, db, q, log); err != nil {
				return 0, fmt.Errorf("migrate %s: %w", db, err)
			}
		}
		done, err = appliedMigrations(ctx, conn, db)
	}
	if err == nil {
		err = checkLayout(ctx, conn, db)
	}
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", db, err)
	}
	known := make(map[int]bool, len(migs))
	for _, m := range migs {
		known[m.Version] = true
		if a, ok := done[m.Version]; ok && a.checksum != m.Checksum {
			return 0, fmt.Errorf("migrate %s: migration %04d_%s was applied with checksum %.12s but the file now has %.12s: add a new migration instead of editing an applied one",
				db, m.Version, m.Name, a.checksum, m.Checksum)
		}
	}
	for v, a := range done {
		if !known[v] {
			return 0, fmt.Errorf("migrate %s: database has migration %04d_%s that this build does not know: run a newer build", db, v, a.name)
		}
	}
	applied := 0
	for _, m := range migs {
		if _, ok := done[m.Version]; ok {
			continue
		}
		start := time.Now()
		if err := applyMigration(ctx, conn, db, m, log); err != nil {
			return applied, fmt.Errorf("migrate %s: %w", db, err)
		}
		if err := recordMigrationQuery(m, time.Now()).Insert(ctx, conn, db); err != nil {
			return applied, fmt.Errorf("migrate %s: record %04d_%s: %w", db, m.Version, m.Name, err)
		}
		applied++
		log.Info("migration applied", "version", m.Version, "name", m.Name,
			"statements", len(m.stmts), "duration", time.Since(start).Round(time.Millisecond))
	}
	if applied == 0 {
		log.Debug("schema up to date", "migrations", len(migs))
	}
	return applied, nil
}

func applyMigration(ctx context.Context, conn driver.Conn, db string, m Migration, log *slog.Logger) error {
	for i, st := range m.stmts {
		name := fmt.Sprintf("migration %04d_%s statement %d", m.Version, m.Name, i+1)
		if c := st.addColumn; c != nil {
			exists, err := columnExists(ctx, conn, db, c.table, c.column)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if exists {
				log.Debug("column already present", logkey.Table, c.table, "column", c.column)
				continue
			}
		}
		texts, err := m.statementAt(i, placeOf(conn, db))
		if err != nil {
			return err
		}
		// Rendered text runs as is: the engines' {shard} and {replica} are the server's macros.
		for _, text := range texts {
			err := ignoreExisting(conn.Exec(ctx, text), name, log)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// ClickHouse error codes meaning that what an idempotent statement creates is already there,
// created concurrently by another Migrate between its check and its statement.
const (
	codeDuplicateColumn       = 15
	codeIllegalColumn         = 44 // 18.16: "Cannot add column x: column with this name already exists"
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

func execIdempotent(ctx context.Context, conn driver.Conn, db string, q Query, log *slog.Logger) error {
	return ignoreExisting(q.Exec(ctx, conn, db), q.Name, log)
}

// ignoreExisting returns err unless it says that what statement name creates already exists.
func ignoreExisting(err error, name string, log *slog.Logger) error {
	var ex *clickhouse.Exception
	if err != nil && errors.As(err, &ex) && alreadyExists(ex) {
		log.Debug("already exists", "statement", name, "code", ex.Code)
		return nil
	}
	return err
}

func alreadyExists(ex *clickhouse.Exception) bool {
	switch ex.Code {
	case codeDuplicateColumn, codeTableAlreadyExists, codeDatabaseAlreadyExists:
		return true
	case codeIllegalColumn:
		return strings.Contains(ex.Message, "already exists")
	}
	return false
}

func appliedMigrations(ctx context.Context, conn driver.Conn, db string) (map[int]appliedMigration, error) {
	out := map[int]appliedMigration{}
	err := appliedMigrationsQuery().Each(ctx, conn, db, func(row Row) error {
		var (
			v uint32
			a appliedMigration
		)
		if err := row.Scan(&v, &a.name, &a.checksum); err != nil {
			return err
		}
		out[int(v)] = a
		return nil
	})
	return out, err
}

func columnExists(ctx context.Context, conn driver.Conn, db, table, column string) (bool, error) {
	var n uint64
	err := columnExistsQuery(table, column).Each(ctx, conn, db, func(row Row) error { return row.Scan(&n) })
	return n > 0, err
}

// checkLayout refuses a database laid out for another shape of cluster than conn's: the split
// tables of a sharded cluster are Distributed, and a database's layout is fixed when migrate
// creates it (moving one means copying it into a new database).
func checkLayout(ctx context.Context, conn driver.Conn, db string) error {
	var engine string
	err := layoutQuery().Each(ctx, conn, db, func(row Row) error { return row.Scan(&engine) })
	switch {
	case err != nil:
		return err
	case engine == "":
		return nil // before the first migration
	case Sharded(conn) && engine != "Distributed":
		return fmt.Errorf("the database was created for one server or one shard (usage_facts is %s), but cluster %s has several shards: create a new database on it and copy the data (docs/operations.md)", engine, ClusterOf(conn))
	case !Sharded(conn) && engine == "Distributed":
		return fmt.Errorf("the database was created on a cluster of several shards (usage_facts is Distributed): set NEONMETER_CLICKHOUSE_CLUSTER to that cluster")
	}
	return nil
}

// layoutQuery reads the engine of usage_facts, which tells how the database is laid out.
func layoutQuery() Query {
	return Query{Name: "migrate.layout", Kind: KindSelect,
		SQL: "SELECT engine FROM system.tables WHERE database = '{db}' AND name = 'usage_facts'"}
}

func createDatabaseQuery() Query {
	return Query{Name: "migrate.create_database", Kind: KindExec,
		SQL: "CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"}
}

// schema_migrations is created by Go rather than by a migration because it records the
// migrations. applied_at is the version, so of two racing Migrate calls the later row stays;
// both carry the same checksum.
func createMigrationsTableQuery() Query {
	return Query{Name: "migrate.create_table", Kind: KindExec, SQL: `CREATE TABLE IF NOT EXISTS {db}.schema_migrations{on_cluster}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC')
)
ENGINE = {engine:ReplacingMergeTree(applied_at)}
ORDER BY version`}
}

func appliedMigrationsQuery() Query {
	return Query{Name: "migrate.applied", Kind: KindSelect,
		SQL: "SELECT version, name, checksum FROM {db}.schema_migrations FINAL ORDER BY version"}
}

func recordMigrationQuery(m Migration, now time.Time) Query {
	return Query{Name: "migrate.record", Kind: KindInsert,
		SQL:  "INSERT INTO {db}.schema_migrations (version, name, checksum, applied_at)",
		Rows: [][]any{{uint32(m.Version), m.Name, m.Checksum, UTC(now)}}}
}

// The database is rendered into the string literal rather than bound so the statement stays
// the same for every database; ValidDatabase guarantees it holds no quote.
func columnExistsQuery(table, column string) Query {
	return Query{Name: "migrate.column_exists", Kind: KindSelect,
		SQL:  "SELECT count() FROM system.columns WHERE database = '{db}' AND table = ? AND name = ?",
		Args: []any{table, column}}
}
