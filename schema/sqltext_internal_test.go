package schema

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []string
	}{
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two with blank tail", "SELECT 1;\nSELECT 2;\n\n", []string{"SELECT 1", "SELECT 2"}},
		{"comments dropped", "-- head; not a statement\nSELECT 1; /* a; b */ SELECT 2 -- tail;\n", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon in string", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"escaped and doubled quotes", `SELECT 'it\'s;', 'x'';y'; SELECT 3`, []string{`SELECT 'it\'s;', 'x'';y'`, "SELECT 3"}},
		{"quoted identifiers", "SELECT `a;b`, \"c;d\" FROM t", []string{"SELECT `a;b`, \"c;d\" FROM t"}},
		{"dashes in string are not a comment", "SELECT '--x'", []string{"SELECT '--x'"}},
		{"only comments", "-- nothing\n/* here */\n;;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitStatements(tt.script)
			if err != nil {
				t.Fatalf("split: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitStatements_Unterminated(t *testing.T) {
	for _, script := range []string{"SELECT 'abc", "SELECT 1 /* open", "SELECT `x"} {
		if _, err := splitStatements(script); err == nil {
			t.Errorf("%q: want an error", script)
		}
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, text, db, cluster, want, wantErr string
	}{
		{name: "all placeholders", db: "nm_1",
			text: "CREATE TABLE {db}.t{on_cluster} (a UInt8) ENGINE = {engine:ReplacingMergeTree(v)} ORDER BY a",
			want: "CREATE TABLE nm_1.t (a UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY a"},
		{name: "db in a string literal", db: "neonmeter",
			text: "SELECT 1 FROM system.columns WHERE database = '{db}'",
			want: "SELECT 1 FROM system.columns WHERE database = 'neonmeter'"},
		{name: "unknown placeholder", db: "x", text: "SELECT {database}", wantErr: "unknown placeholder {database}"},
		{name: "engine needs an argument", db: "x", text: "ENGINE = {engine}", wantErr: "unknown placeholder {engine}"},
		{name: "db takes no argument", db: "x", text: "{db:y}.t", wantErr: "unknown placeholder"},
		{name: "quote in database", db: "x'; DROP", text: "{db}", wantErr: "letters, digits and underscores"},
		{name: "dash in database", db: "neon-meter", text: "{db}", wantErr: "letters, digits and underscores"},
		{name: "leading digit", db: "1db", text: "{db}", wantErr: "letters, digits and underscores"},
		{name: "empty database", db: "", text: "{db}", wantErr: "letters, digits and underscores"},
		{name: "cluster: replacing with version", db: "nm", cluster: "c1",
			text: "CREATE TABLE IF NOT EXISTS {db}.usage_facts{on_cluster}\n(a UInt8)\nENGINE = {engine:ReplacingMergeTree(version)} ORDER BY a",
			want: "CREATE TABLE IF NOT EXISTS nm.usage_facts ON CLUSTER c1\n(a UInt8)\n" +
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/nm/usage_facts', '{replica}', version) ORDER BY a"},
		{name: "cluster: engine without arguments", db: "nm", cluster: "c1",
			text: "CREATE TABLE {db}.lease_x_1{on_cluster} ENGINE = {engine:MergeTree} ORDER BY at_ms AS SELECT 1 AS at_ms",
			want: "CREATE TABLE nm.lease_x_1 ON CLUSTER c1 ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/nm/lease_x_1', '{replica}') ORDER BY at_ms AS SELECT 1 AS at_ms"},
		{name: "cluster: empty argument list", db: "nm", cluster: "c1",
			text: "CREATE TABLE IF NOT EXISTS {db}.t{on_cluster} (a UInt8) ENGINE = {engine:ReplacingMergeTree()} ORDER BY a",
			want: "CREATE TABLE IF NOT EXISTS nm.t ON CLUSTER c1 (a UInt8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/nm/t', '{replica}') ORDER BY a"},
		{name: "cluster: alter and database", db: "nm", cluster: "c1",
			text: "ALTER TABLE {db}.t{on_cluster} DROP PARTITION 202001; CREATE DATABASE IF NOT EXISTS {db}{on_cluster}",
			want: "ALTER TABLE nm.t ON CLUSTER c1 DROP PARTITION 202001; CREATE DATABASE IF NOT EXISTS nm ON CLUSTER c1"},
		{name: "cluster: view keeps no engine", db: "nm", cluster: "c1",
			text: "CREATE VIEW IF NOT EXISTS {db}.v{on_cluster} AS SELECT 1",
			want: "CREATE VIEW IF NOT EXISTS nm.v ON CLUSTER c1 AS SELECT 1"},
		{name: "cluster: engine without a replicated form", db: "nm", cluster: "c1",
			text: "CREATE TABLE {db}.t{on_cluster} (a UInt8) ENGINE = {engine:Memory}", wantErr: "engine Memory has no replicated form"},
		{name: "cluster: engine outside create table", db: "nm", cluster: "c1",
			text: "SELECT '{engine:MergeTree}'", wantErr: "outside CREATE TABLE"},
		{name: "cluster: bad cluster name", db: "nm", cluster: "c-1", text: "{db}", wantErr: "cluster name \"c-1\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(tt.text, tt.db, tt.cluster)
			if errorCase(t, "render", err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// On a cluster every table of the migrations is replicated and every DDL statement runs on
// every replica; a migration that forgot a placeholder would create a table on one server only.
func TestMigrations_ClusterRendering(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	for _, m := range migs {
		stmts, err := m.StatementsOn("neonmeter", "c1")
		if err != nil {
			t.Fatalf("statements: %v", err)
		}
		for _, s := range stmts {
			ddl := regexp.MustCompile(`^(CREATE|ALTER|DROP|RENAME)\b`).MatchString(s)
			if ddl && !strings.Contains(s, " ON CLUSTER c1") {
				t.Errorf("%04d_%s: DDL without {on_cluster}: %.70s…", m.Version, m.Name, s)
			}
			if strings.Contains(s, "ENGINE") && !strings.Contains(s, "ENGINE = Replicated") {
				t.Errorf("%04d_%s: engine without {engine:…}: %.70s…", m.Version, m.Name, s)
			}
		}
	}
}

func TestParseMigration(t *testing.T) {
	tests := []struct {
		name, file, text string
		wantErr          string
		wantAdd          *columnRef
	}{
		{name: "plain", file: "0007_x.sql", text: "CREATE TABLE IF NOT EXISTS {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a;"},
		{name: "add column guarded", file: "0007_x.sql",
			text:    "ALTER TABLE {db}.usage_facts{on_cluster}\n  ADD COLUMN region String DEFAULT ''",
			wantAdd: &columnRef{table: "usage_facts", column: "region"}},
		{name: "add column if not exists refused", file: "0007_x.sql",
			text: "ALTER TABLE {db}.t ADD COLUMN IF NOT EXISTS b UInt8", wantErr: "fails on ClickHouse 18.16"},
		{name: "two columns in one statement refused", file: "0007_x.sql",
			text: "ALTER TABLE {db}.t ADD COLUMN b UInt8, ADD COLUMN c UInt8", wantErr: "one per statement"},
		{name: "unqualified table refused", file: "0007_x.sql",
			text: "ALTER TABLE t ADD COLUMN b UInt8", wantErr: "one per statement"},
		{name: "bad file name", file: "7_x.sql", text: "SELECT 1", wantErr: "0001_name.sql"},
		{name: "version zero", file: "0000_x.sql", text: "SELECT 1", wantErr: "reserved"},
		{name: "empty", file: "0007_x.sql", text: "-- nothing\n", wantErr: "no statements"},
		{name: "unknown placeholder", file: "0007_x.sql", text: "CREATE TABLE {database}.t", wantErr: "unknown placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMigration(tt.file, []byte(tt.text))
			if errorCase(t, "parse", err, tt.wantErr) {
				return
			}
			if m.Version != 7 || m.Name != "x" || len(m.Checksum) != 64 || len(m.stmts) != 1 {
				t.Fatalf("got version %d name %q checksum %q with %d statements", m.Version, m.Name, m.Checksum, len(m.stmts))
			}
			if !reflect.DeepEqual(m.stmts[0].addColumn, tt.wantAdd) {
				t.Fatalf("add column = %+v, want %+v", m.stmts[0].addColumn, tt.wantAdd)
			}
		})
	}
}

func TestMigrations_Builtin(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	if len(migs) < 2 {
		t.Fatalf("got %d migrations, want at least 2", len(migs))
	}
	for i, m := range migs {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d: versions must run 1, 2, 3… without gaps", i, m.Version)
		}
		stmts, err := m.Statements("neonmeter")
		if err != nil {
			t.Fatalf("statements: %v", err)
		}
		for j, s := range stmts {
			// Every statement must be safe to run twice, as racing Migrate calls do. MODIFY
			// COLUMN to a given type is: a second run finds the type already there.
			if !strings.Contains(s, "IF NOT EXISTS") && m.stmts[j].addColumn == nil && !strings.Contains(s, "MODIFY COLUMN") {
				t.Errorf("%04d_%s: statement is not idempotent: %.60s…", m.Version, m.Name, s)
			}
			for _, banned := range []string{"TTL", "CODEC", "LowCardinality", "DateTime64", "SimpleAggregateFunction"} {
				if strings.Contains(s, banned) {
					t.Errorf("%04d_%s: %s does not run on ClickHouse 18.16: %.60s…", m.Version, m.Name, banned, s)
				}
			}
		}
	}
}

func TestMonthIndex_Cutoff(t *testing.T) {
	// Month M is dropped when monthIndex(M) < monthIndex(now) - keep.
	tests := []struct {
		year, month, keep int
		partition         int
		drop              bool
	}{
		{2026, 3, 25, 202401, true},
		{2026, 3, 25, 202402, false},
		{2026, 1, 1, 202511, true},
		{2026, 1, 1, 202512, false},
		{2026, 1, 12, 202412, true},
		{2026, 1, 12, 202501, false},
	}
	for _, tt := range tests {
		cutoff := monthIndex(tt.year, tt.month) - tt.keep
		got := monthIndex(tt.partition/100, tt.partition%100) < cutoff
		if got != tt.drop {
			t.Errorf("now %d-%02d keep %d: partition %d dropped = %v, want %v", tt.year, tt.month, tt.keep, tt.partition, got, tt.drop)
		}
	}
}

// errorCase checks err of a table case: a case with wantErr needs an error containing it and
// ends there (true); one without needs no error, and step names the call in the failure.
func errorCase(t *testing.T, step string, err error, wantErr string) bool {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want one containing %q", err, wantErr)
		}
		return true
	}
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return false
}
