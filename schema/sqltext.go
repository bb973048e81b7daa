package schema

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// SQL text of migrations and queries carries placeholders that render fills in:
//
//	{db}                              the database name (validated as an identifier)
//	{on_cluster}                      " ON CLUSTER <name>" on a cluster; empty on one server
//	{engine:ReplacingMergeTree(ver)}  the table engine: as written on one server, its
//	                                  Replicated form on a cluster
//	{local:usage_facts}               the table holding a sharded table's rows on each shard
//	                                  (usage_facts_local) on a sharded cluster; else the table
//	{each_shard:system.parts}         a system table read on one replica of every shard
//	                                  (cluster(...)) on a sharded cluster; else the table
//
// Everything that changes when neonmeter runs on a replicated cluster (ON CLUSTER clauses,
// Replicated* engines with their ZooKeeper path and replica macro) and on a sharded one (the
// local and Distributed tables of the sharded tables, ALTERs on the local tables) is decided
// in this file and nowhere else, so statements are written once.
var placeholder = regexp.MustCompile(`\{([a-z_]+)(?::([^{}]*))?\}`)

// identPattern is what a database or cluster name may look like. Names are pasted into SQL
// (DDL cannot bind them), so anything else is refused rather than quoted.
var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,199}$`)

// ValidDatabase reports whether name can be used as a neonmeter database name.
func ValidDatabase(name string) bool { return identPattern.MatchString(name) }

// ValidCluster reports whether name can be used as the name of the ClickHouse cluster.
func ValidCluster(name string) bool { return identPattern.MatchString(name) }

// place is where a statement runs: database db on one server (cluster empty), on a cluster of
// one shard of replicas, or on a cluster of several shards (sharded).
type place struct {
	db, cluster string
	sharded     bool
}

// localSuffix names the table that holds a sharded table's rows on each shard: usage_facts is
// then the Distributed table over usage_facts_local.
const localSuffix = "_local"

// shardKey returns the expression that picks the shard of a row of table, or "" for a table
// kept whole on every replica of every shard. Only the tables that grow with usage are split.
// Every key derives from the table's ReplacingMergeTree key, so every version of a row lands
// on the same shard, where FINAL, argMax and block deduplication see them all.
func shardKey(table string) string {
	switch table {
	case "usage_facts", "usage_coarse", "usage_revisions", "collection_progress":
		return "cityHash64(project_id)"
	case "billing_ledger":
		return "cityHash64(customer_id)"
	}
	return ""
}

// onClusterClause is the ON CLUSTER clause of DDL and ALTER statements: every replica runs
// them through ClickHouse's distributed DDL queue. A single server needs none.
func onClusterClause(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER " + cluster
}

var (
	// mergeTreeEngine is an engine with a Replicated form: a *MergeTree with optional arguments.
	mergeTreeEngine = regexp.MustCompile(`^([A-Za-z]*MergeTree)(?:\((.*)\))?$`)
	// createdTable finds the table a CREATE TABLE statement creates, for its ZooKeeper path.
	createdTable = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\{db\}\.(\w+)`)
	// alteredTable finds the table an ALTER TABLE statement changes.
	alteredTable = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+\{db\}\.(\w+)`)
	// columnChange is an ALTER that changes the columns, which a Distributed table repeats.
	columnChange = regexp.MustCompile(`(?i)\b(ADD|MODIFY|DROP|RENAME)\s+COLUMN\b`)
)

// engineClause renders a table engine of the table created by stmt. On one server the engine
// is used as written. On a cluster ReplacingMergeTree(v) becomes
// ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<table>', '{replica}', v):
// the replicas of a shard share the ZooKeeper path, and the server's own macros fill in
// {shard} and {replica}. The database is part of the path, so databases never share one. On a
// sharded cluster a table kept whole has one path for every shard ('all' instead of {shard}),
// so every server holds all of it (a JOIN or IN inside a distributed query finds it locally);
// the replica macros must then be unique across the cluster.
func engineClause(engine, stmt string, p place) (string, error) {
	if p.cluster == "" {
		return engine, nil
	}
	m := mergeTreeEngine.FindStringSubmatch(engine)
	if m == nil {
		return "", fmt.Errorf("engine %s has no replicated form: a table on a cluster needs a *MergeTree engine", engine)
	}
	t := createdTable.FindStringSubmatch(stmt)
	if t == nil {
		return "", fmt.Errorf("{engine:%s} outside CREATE TABLE {db}.name: the replicated path needs the table", engine)
	}
	shard := "{shard}"
	if p.sharded && shardKey(strings.TrimSuffix(t[1], localSuffix)) == "" {
		shard = "all"
	}
	args := fmt.Sprintf("'/clickhouse/tables/%s/%s/%s', '{replica}'", shard, p.db, t[1])
	if m[2] != "" {
		args += ", " + m[2]
	}
	return "Replicated" + m[1] + "(" + args + ")", nil
}

// render fills the placeholders of text for place p. A statement that a sharded cluster runs
// as several (see renderAll) is refused: only migrations create and alter sharded tables.
func render(text string, p place) (string, error) {
	stmts, err := renderAll(text, p)
	if err != nil {
		return "", err
	}
	if len(stmts) != 1 {
		return "", fmt.Errorf("statement becomes %d statements on a sharded cluster: create and alter sharded tables in migrations only", len(stmts))
	}
	return stmts[0], nil
}

// renderAll renders text for place p as the statements that carry it out. On a sharded
// cluster, CREATE TABLE of a sharded table t creates t_local (replicated per shard) and then
// t, a Distributed table over it with the same columns, so every other statement keeps naming
// t; ALTER TABLE t goes to t_local, and one that changes columns re-creates t after it (18.16
// refuses ALTER ON CLUSTER on a Distributed table, and the table holds no data: inserts into it
// are synchronous).
func renderAll(text string, p place) ([]string, error) {
	table, dist := "", false
	if p.sharded {
		if t := createdTable.FindStringSubmatch(text); t != nil && shardKey(t[1]) != "" {
			table, dist = t[1], true
		}
		if t := alteredTable.FindStringSubmatch(text); t != nil && shardKey(t[1]) != "" {
			table, dist = t[1], columnChange.MatchString(text)
		}
		if table != "" {
			// The table name is followed by {on_cluster} or a non-word character.
			at := strings.Index(text, "{db}."+table) + len("{db}."+table)
			text = text[:at] + localSuffix + text[at:]
		}
	}
	first, err := fill(text, p)
	if err != nil {
		return nil, err
	}
	out := []string{first}
	if table == "" || !dist {
		return out, nil
	}
	if alteredTable.MatchString(text) {
		out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", p.db, table, onClusterClause(p.cluster)))
	}
	return append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s%[3]s AS %[1]s.%[2]s%[4]s\nENGINE = Distributed(%[5]s, %[1]s, %[2]s%[4]s, %[6]s)",
		p.db, table, onClusterClause(p.cluster), localSuffix, p.cluster, shardKey(table))), nil
}

// fill replaces the placeholders of text for place p.
func fill(text string, p place) (string, error) {
	if !ValidDatabase(p.db) {
		return "", fmt.Errorf("database name %q: must be letters, digits and underscores", p.db)
	}
	if p.cluster != "" && !ValidCluster(p.cluster) {
		return "", fmt.Errorf("cluster name %q: must be letters, digits and underscores", p.cluster)
	}
	var bad []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		s, err := fillOne(sub[1], sub[2], text, p)
		if err != nil {
			bad = append(bad, err.Error())
			return m
		}
		return s
	})
	if len(bad) > 0 {
		return "", errors.New(strings.Join(bad, "; "))
	}
	return out, nil
}

// fillOne renders the placeholder {name:arg} of stmt.
func fillOne(name, arg, stmt string, p place) (string, error) {
	switch {
	case name == "db" && arg == "":
		return p.db, nil
	case name == "on_cluster" && arg == "":
		return onClusterClause(p.cluster), nil
	case name == "engine" && arg != "":
		return engineClause(arg, stmt, p)
	case name == "local" && identPattern.MatchString(arg):
		if p.sharded && shardKey(arg) != "" {
			return arg + localSuffix, nil
		}
		return arg, nil
	case name == "each_shard" && strings.HasPrefix(arg, "system.") && identPattern.MatchString(strings.TrimPrefix(arg, "system.")):
		if p.sharded {
			return "cluster('" + p.cluster + "', " + arg + ")", nil
		}
		return arg, nil
	}
	if arg != "" {
		return "", fmt.Errorf("unknown placeholder {%s:%s}", name, arg)
	}
	return "", fmt.Errorf("unknown placeholder {%s}", name)
}

// splitStatements cuts a SQL script into statements at semicolons outside quotes and comments,
// dropping comments and empty statements. ClickHouse's native protocol runs one statement per
// call (and 18.16's client silently skips statements after an INSERT … VALUES), so scripts are
// always split here.
func splitStatements(script string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '-' && i+1 < len(script) && script[i+1] == '-':
			for i < len(script) && script[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == '/' && i+1 < len(script) && script[i+1] == '*':
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment")
			}
			i += 2 + end + 1
			cur.WriteByte(' ')
		case c == '\'' || c == '"' || c == '`':
			j, err := quotedEnd(script, i)
			if err != nil {
				return nil, err
			}
			cur.WriteString(script[i : j+1])
			i = j
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return stmts, nil
}

// quotedEnd returns the index of the quote closing the quoted text that starts at i. Inside,
// a backslash escapes the next byte and a doubled quote stands for itself, as in ClickHouse.
func quotedEnd(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c quote", q)
}
