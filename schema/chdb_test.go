//go:build chdb

package schema_test

// Runs every migration and every catalog statement on current ClickHouse, in process through
// chDB (libchdb.so at $CHDB_LIB_PATH), so SQL that only 18.16 accepts cannot ship. chDB speaks
// no native protocol, so arguments are rendered into the SQL as literals here.
//
// chdb-go loads the library when the test binary starts: a missing library panics there,
// which fails the run as surely as the check below.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chdb-io/chdb-go/chdb"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// chdbSession runs SQL in one chDB session and fails the test on any error.
type chdbSession struct {
	t    *testing.T
	sess *chdb.Session
}

func (c chdbSession) run(sql string) string {
	c.t.Helper()
	res, err := c.sess.Query(sql, "TabSeparated")
	if err != nil {
		c.t.Fatalf("chdb: %v\n%s", err, sql)
	}
	if res == nil {
		c.t.Fatalf("chdb: no result\n%s", sql)
	}
	defer res.Free()
	if err := res.Error(); err != nil {
		c.t.Fatalf("chdb: %v\n%s", err, sql)
	}
	return res.String()
}

// runQuery renders q for db with its arguments (or rows) as literals and runs it.
func (c chdbSession) runQuery(q schema.Query, db string) string {
	c.t.Helper()
	text, err := q.Text(db)
	if err != nil {
		c.t.Fatalf("%s: %v", q.Name, err)
	}
	if q.Kind == schema.KindInsert {
		rows := make([]string, len(q.Rows))
		for i, r := range q.Rows {
			rows[i] = "(" + literals(c.t, r) + ")"
		}
		return c.run(text + " VALUES " + strings.Join(rows, ", "))
	}
	return c.run(bindLiterals(c.t, text, q.Args))
}

// bindLiterals replaces each ? outside quotes with the next argument as a SQL literal.
func bindLiterals(t *testing.T, sql string, args []any) string {
	t.Helper()
	var b strings.Builder
	n := 0
	quote := byte(0)
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(sql) {
				b.WriteByte(c)
				i++
				c = sql[i]
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '?':
			if n >= len(args) {
				t.Fatalf("more ? than args in %s", sql)
			}
			b.WriteString(literal(t, args[n]))
			n++
			continue
		}
		b.WriteByte(c)
	}
	if n != len(args) {
		t.Fatalf("%d args for %d ? in %s", len(args), n, sql)
	}
	return b.String()
}

func literals(t *testing.T, vals []any) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = literal(t, v)
	}
	return strings.Join(out, ", ")
}

func literal(t *testing.T, v any) string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	case time.Time:
		return "toDateTime('" + v.UTC().Format(time.DateTime) + "', 'UTC')"
	case uint8:
		return strconv.FormatUint(uint64(v), 10)
	case uint16:
		return strconv.FormatUint(uint64(v), 10)
	case []string:
		items := make([]string, len(v))
		for i, s := range v {
			items[i] = literal(t, s)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	t.Fatalf("no literal for %T", v)
	return ""
}

func catalogQuery(t *testing.T, name string) schema.Query {
	t.Helper()
	for _, q := range catalog() {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("catalog has no %s", name)
	return schema.Query{}
}

func TestChdb(t *testing.T) {
	lib := os.Getenv("CHDB_LIB_PATH")
	if lib == "" {
		t.Fatalf("CHDB_LIB_PATH is not set: point it at libchdb.so (make test sets it)")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("CHDB_LIB_PATH: %v", err)
	}
	sess, err := chdb.NewSession(t.TempDir())
	if err != nil {
		t.Fatalf("chdb session: %v", err)
	}
	defer sess.Close()
	c := chdbSession{t: t, sess: sess}
	version := strings.TrimSpace(c.run("SELECT version()"))
	major, _ := strconv.Atoi(strings.Split(version, ".")[0])
	if major < 24 {
		t.Fatalf("chDB runs ClickHouse %s; this test is meant for a current release", version)
	}
	t.Logf("ClickHouse %s (chDB)", version)

	const db = "neonmeter_chdb"
	t.Run("migrations", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		c.runQuery(catalogQuery(t, "migrate.create_database"), db)
		migs, err := schema.Migrations()
		if err != nil {
			t.Fatalf("migrations: %v", err)
		}
		for _, m := range migs {
			stmts, err := m.Statements(db)
			if err != nil {
				t.Fatalf("statements: %v", err)
			}
			for _, s := range stmts {
				c.run(s)
				// Idempotent, as racing Migrate calls need; Migrate guards ADD COLUMN itself
				// (system.columns), which chDB's IF NOT EXISTS stands in for here.
				c.run(strings.Replace(s, " ADD COLUMN ", " ADD COLUMN IF NOT EXISTS ", 1))
			}
		}
		got := strings.Fields(c.run("SELECT name FROM system.tables WHERE database = '" + db + "' ORDER BY name"))
		if want := "account_history,billing_drift,billing_late_adjustments,billing_ledger,billing_reconcile_runs,collection_progress,collection_runs,collection_watermarks,enforcement_at_risk,enforcement_audit,enforcement_breaker,enforcement_state,lease_events,neon_unit_costs,plan_unit_prices,usage_coarse,usage_facts,usage_hourly,usage_revisions"; strings.Join(got, ",") != want {
			t.Fatalf("tables = %v, want %s", got, want)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		for _, q := range catalog() {
			c.runQuery(q, db)
		}
	})

	// The catalog inserted two versions of one hourly fact (3600 at version 1, 7200 at 2).
	t.Run("latest row wins", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		check := func(stage, want string) {
			t.Helper()
			got := c.run("SELECT project_id, metric, toString(hour), value FROM " + db + ".usage_hourly ORDER BY project_id, metric, hour")
			if got != want {
				t.Fatalf("%s: usage_hourly =\n%s\nwant\n%s", stage, got, want)
			}
			if got, want := c.runQuery(catalogQuery(t, "usage.totals"), db), totalsFrom(want); got != want {
				t.Fatalf("%s: usage.totals =\n%s\nwant\n%s", stage, got, want)
			}
		}
		check("catalog inserts", "project-a\tcompute_unit_seconds\t2026-01-01 00:00:00\t7200\n")
		// Positions are 1-based: project-a is the first project, compute_unit_seconds the first
		// metric. Versions not yet merged away are returned too; the caller keeps the highest.
		scan := catalogQuery(t, "facts.scan_stored")
		scan.SQL += " ORDER BY version"
		versions := strings.Split(strings.TrimSpace(c.runQuery(scan, db)), "\n")
		if last := versions[len(versions)-1]; last != "1\t1\t1767225600\t7200\t2" {
			t.Fatalf("facts.scan_stored highest version = %q, want the 7200 row", last)
		}

		insert := catalogQuery(t, "facts.insert")
		row := func(project string, value, version uint64) []any {
			r := append([]any(nil), insert.Rows[0]...)
			r[1], r[4], r[8] = project, value, version
			return r
		}
		insert.Rows = [][]any{row("project-a", 1, 1)} // an old version arriving late
		c.runQuery(insert, db)
		check("late old version", "project-a\tcompute_unit_seconds\t2026-01-01 00:00:00\t7200\n")

		insert.Rows = [][]any{row("project-a", 5000, 3), row("project-b", 42, 1), row("project-b", 43, 1)}
		c.runQuery(insert, db)
		got := c.run("SELECT project_id, value FROM " + db + ".usage_hourly ORDER BY project_id")
		lines := strings.Split(strings.TrimSpace(got), "\n")
		// project-b's two rows share version 1: exactly one of them is shown.
		if len(lines) != 2 || lines[0] != "project-a\t5000" || (lines[1] != "project-b\t42" && lines[1] != "project-b\t43") {
			t.Fatalf("after a revision: usage_hourly =\n%s", got)
		}

		c.run("OPTIMIZE TABLE " + db + ".usage_facts FINAL")
		if got := strings.TrimSpace(c.run("SELECT count() FROM " + db + ".usage_facts")); got != "2" {
			t.Fatalf("after merging, usage_facts has %s rows, want 2", got)
		}
	})

	t.Run("revisions dedup", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		c.runQuery(catalogQuery(t, "revisions.insert"), db) // the catalog logged it once already
		got := c.runQuery(catalogQuery(t, "revisions.list"), db)
		if n := strings.Count(got, "\n"); n != 1 || !strings.Contains(got, "\t3600\t7200\t1\t2\t") {
			t.Fatalf("revisions.list =\n%s\nwant the one revision", got)
		}
	})

	t.Run("runs and watermarks replace", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		write := catalogQuery(t, "runs.write")
		final := append([]any(nil), write.Rows[0]...)
		final[7] = time.Date(2026, 1, 2, 2, 5, 0, 0, time.UTC) // finished_at
		final[16] = string(collector.OutcomeSuccess)
		write.Rows = [][]any{final}
		c.runQuery(write, db)
		got := c.runQuery(catalogQuery(t, "runs.list"), db)
		if strings.Count(got, "\n") != 1 || !strings.Contains(got, "\tsuccess\t") {
			t.Fatalf("runs.list =\n%s\nwant one successful run", got)
		}

		set := catalogQuery(t, "watermarks.set")
		later := append([]any(nil), set.Rows[0]...)
		later[3] = time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
		later[4] = time.Date(2026, 1, 3, 2, 0, 0, 0, time.UTC)
		set.Rows = [][]any{later}
		c.runQuery(set, db)
		if got := c.runQuery(catalogQuery(t, "watermarks.get"), db); got != "2026-01-03 00:00:00\n" {
			t.Fatalf("watermarks.get = %q", got)
		}
	})

	t.Run("doc examples", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		insert := catalogQuery(t, "facts.insert")
		insert.Rows = nil
		for _, f := range docSampleFacts() {
			insert.Rows = append(insert.Rows, []any{f.OrgID, f.ProjectID, f.Metric, f.Hour, f.Value, f.PeriodID, f.PeriodPlan, f.CollectedAt, f.Version})
		}
		c.runQuery(insert, db)
		for i, q := range docExamples(t, db) {
			if strings.TrimSpace(c.run(q)) == "" {
				t.Fatalf("example %d found nothing:\n%s", i+1, q)
			}
		}
	})

	// The catalog recorded project-a on free from 2025-12-31 and on pro from 2026-01-01 14:00,
	// and project-b on enterprise from 2026-01-01 00:00.
	t.Run("accounts plan at an instant", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		plans := func(q schema.Query) string {
			var b strings.Builder
			for _, line := range strings.Split(strings.TrimSpace(c.runQuery(q, db)), "\n") {
				f := strings.Split(line, "\t")
				fmt.Fprintf(&b, "%s=%s ", f[0], f[3])
			}
			return strings.TrimSpace(b.String())
		}
		at := catalogQuery(t, "accounts.at")
		if got := plans(at); got != "project-a=free project-b=enterprise" {
			t.Fatalf("accounts.at 13:00 = %q", got)
		}
		at.Args[len(at.Args)-1] = time.Date(2026, 1, 1, 14, 0, 0, 0, time.UTC)
		if got := plans(at); got != "project-a=pro project-b=enterprise" {
			t.Fatalf("accounts.at 14:00 = %q", got)
		}
		// Recording the upgrade again (a re-run sync) keeps one row per change.
		c.runQuery(catalogQuery(t, "accounts.insert"), db)
		if got := strings.Count(c.runQuery(catalogQuery(t, "accounts.history_all"), db), "\n"); got != 3 {
			t.Fatalf("accounts.history_all has %d rows, want 3", got)
		}
		if got := c.runQuery(catalogQuery(t, "accounts.usage_projects"), db); got != "project-a\nproject-b\n" {
			t.Fatalf("accounts.usage_projects = %q", got)
		}
	})

	// The catalog wrote project-a's enforcement state at version 1; a later version replaces it.
	t.Run("enforcement state latest wins", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		w := catalogQuery(t, "enforcement.write_states")
		row := append([]any(nil), w.Rows[0]...)
		row[3], row[10] = "ok", uint64(2) // level, version
		w.Rows = [][]any{row}
		c.runQuery(w, db)
		if got := c.runQuery(catalogQuery(t, "enforcement.states"), db); strings.Count(got, "\n") != 1 || !strings.Contains(got, "\tok\t") {
			t.Fatalf("enforcement.states =\n%s\nwant one row at level ok", got)
		}
		if got := c.runQuery(catalogQuery(t, "enforcement.audit_of"), db); !strings.Contains(got, "['op-1']") {
			t.Fatalf("enforcement.audit_of =\n%s\nwant the sample row with its operation id", got)
		}
	})

	t.Run("retention lists partitions", func(t *testing.T) {
		c := chdbSession{t: t, sess: sess}
		got := c.runQuery(catalogQuery(t, "retention.partitions"), db)
		for _, want := range []string{"usage_coarse\t202601", "usage_facts\t202601", "usage_revisions\t202601"} {
			if !strings.Contains(got, want) {
				t.Fatalf("retention.partitions =\n%s\nmissing %s", got, want)
			}
		}
	})
}

// totalsFrom turns usage_hourly lines (project, metric, hour, value) of single hours into the
// expected usage.totals output.
func totalsFrom(hourly string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(hourly), "\n") {
		f := strings.Split(line, "\t")
		fmt.Fprintf(&b, "%s\t%s\t%s\n", f[0], f[1], f[3])
	}
	return b.String()
}
