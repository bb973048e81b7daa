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
			got, err := render(tt.text, place{db: tt.db, cluster: tt.cluster})
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

// On a sharded cluster the tables that grow with usage become a local replicated table per
// shard plus a Distributed table of the old name; every other table is one replicated table on
// every server; ALTERs of a sharded table go to its local table.
func TestRender_Sharded(t *testing.T) {
	sharded := place{db: "nm", cluster: "c2", sharded: true}
	tests := []struct {
		name, text string
		p          place
		want       []string
		wantErr    string
	}{
		{name: "sharded table", p: sharded,
			text: "CREATE TABLE IF NOT EXISTS {db}.usage_facts{on_cluster}\n(a UInt8)\nENGINE = {engine:ReplacingMergeTree(version)} ORDER BY a",
			want: []string{"CREATE TABLE IF NOT EXISTS nm.usage_facts_local ON CLUSTER c2\n(a UInt8)\n" +
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/nm/usage_facts_local', '{replica}', version) ORDER BY a",
				"CREATE TABLE IF NOT EXISTS nm.usage_facts ON CLUSTER c2 AS nm.usage_facts_local\nENGINE = Distributed(c2, nm, usage_facts_local, cityHash64(project_id))"}},
		{name: "billing by customer", p: sharded,
			text: "CREATE TABLE IF NOT EXISTS {db}.billing_ledger{on_cluster} (a UInt8) ENGINE = {engine:ReplacingMergeTree(version)} ORDER BY a",
			want: []string{"CREATE TABLE IF NOT EXISTS nm.billing_ledger_local ON CLUSTER c2 (a UInt8) " +
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/nm/billing_ledger_local', '{replica}', version) ORDER BY a",
				"CREATE TABLE IF NOT EXISTS nm.billing_ledger ON CLUSTER c2 AS nm.billing_ledger_local\nENGINE = Distributed(c2, nm, billing_ledger_local, cityHash64(customer_id))"}},
		{name: "whole table on every shard", p: sharded,
			text: "CREATE TABLE IF NOT EXISTS {db}.account_history{on_cluster} (a UInt8) ENGINE = {engine:MergeTree} ORDER BY a",
			want: []string{"CREATE TABLE IF NOT EXISTS nm.account_history ON CLUSTER c2 (a UInt8) " +
				"ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/nm/account_history', '{replica}') ORDER BY a"}},
		{name: "column change re-creates the distributed table", p: sharded,
			text: "ALTER TABLE {db}.billing_ledger{on_cluster} ADD COLUMN x Int64 DEFAULT -1",
			want: []string{"ALTER TABLE nm.billing_ledger_local ON CLUSTER c2 ADD COLUMN x Int64 DEFAULT -1",
				"DROP TABLE IF EXISTS nm.billing_ledger ON CLUSTER c2",
				"CREATE TABLE IF NOT EXISTS nm.billing_ledger ON CLUSTER c2 AS nm.billing_ledger_local\nENGINE = Distributed(c2, nm, billing_ledger_local, cityHash64(customer_id))"}},
		{name: "partition drop on the local tables", p: sharded,
			text: "ALTER TABLE {db}.usage_revisions{on_cluster} DROP PARTITION 202001",
			want: []string{"ALTER TABLE nm.usage_revisions_local ON CLUSTER c2 DROP PARTITION 202001"}},
		{name: "alter of a whole table", p: sharded,
			text: "ALTER TABLE {db}.enforcement_state{on_cluster} ADD COLUMN gone UInt8 DEFAULT 0",
			want: []string{"ALTER TABLE nm.enforcement_state ON CLUSTER c2 ADD COLUMN gone UInt8 DEFAULT 0"}},
		{name: "parts of every shard", p: sharded,
			text: "SELECT 1 FROM {each_shard:system.parts} WHERE table IN ('{local:usage_facts}', '{local:account_history}')",
			want: []string{"SELECT 1 FROM cluster('c2', system.parts) WHERE table IN ('usage_facts_local', 'account_history')"}},
		{name: "one shard keeps the names", p: place{db: "nm", cluster: "c1"},
			text: "SELECT 1 FROM {each_shard:system.parts} WHERE table = '{local:usage_facts}'; ALTER TABLE {db}.usage_facts{on_cluster} DROP PARTITION 1",
			want: []string{"SELECT 1 FROM system.parts WHERE table = 'usage_facts'; ALTER TABLE nm.usage_facts ON CLUSTER c1 DROP PARTITION 1"}},
		{name: "each_shard of a user table", p: sharded, text: "SELECT 1 FROM {each_shard:nm.t}", wantErr: "unknown placeholder {each_shard:nm.t}"},
		{name: "local of a bad name", p: sharded, text: "SELECT '{local:a-b}'", wantErr: "unknown placeholder {local:a-b}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderAll(tt.text, tt.p)
			if errorCase(t, "render", err, tt.wantErr) {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	if _, err := render("CREATE TABLE {db}.usage_facts{on_cluster} (a UInt8) ENGINE = {engine:MergeTree} ORDER BY a", sharded); err == nil ||
		!strings.Contains(err.Error(), "becomes 2 statements") {
		t.Fatalf("a query that expands on a sharded cluster: err = %v, want refused", err)
	}
}

// On a sharded cluster every migration statement runs ON CLUSTER; each sharded table gets its
// local table (per shard) and a Distributed table; every other table is whole on every server.
func TestMigrations_ShardedRendering(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	p := place{db: "neonmeter", cluster: "c2", sharded: true}
	distributed, local := map[string]bool{}, map[string]bool{}
	for _, m := range migs {
		for i := range m.stmts {
			stmts, err := m.statementAt(i, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range stmts {
				if !strings.Contains(s, " ON CLUSTER c2") {
					t.Errorf("%04d_%s: DDL without ON CLUSTER: %.70s…", m.Version, m.Name, s)
				}
				c := createdTable.FindStringSubmatch(strings.Replace(s, "neonmeter.", "{db}.", 1))
				if c == nil {
					continue
				}
				switch table := c[1]; {
				case strings.Contains(s, "ENGINE = Distributed(c2, neonmeter, "+table+"_local, cityHash64("):
					distributed[table] = true
				case strings.Contains(s, "'/clickhouse/tables/{shard}/neonmeter/"+table+"'"):
					local[strings.TrimSuffix(table, localSuffix)] = true
				case !strings.Contains(s, "'/clickhouse/tables/all/neonmeter/"+table+"'"):
					t.Errorf("%04d_%s: %s is neither sharded nor whole on every server: %.120s…", m.Version, m.Name, table, s)
				}
			}
		}
	}
	want := map[string]bool{"usage_facts": true, "usage_coarse": true, "usage_revisions": true, "collection_progress": true, "billing_ledger": true}
	if !reflect.DeepEqual(distributed, want) || !reflect.DeepEqual(local, want) {
		t.Fatalf("distributed tables %v, local tables %v; want both %v", distributed, local, want)
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
