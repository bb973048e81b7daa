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
//
// Everything that changes when neonmeter runs on a replicated cluster (ON CLUSTER clauses,
// Replicated* engines with their ZooKeeper path and replica macro) is decided by
// onClusterClause and engineClause below and nowhere else, so statements are written once.
var placeholder = regexp.MustCompile(`\{([a-z_]+)(?::([^{}]*))?\}`)

// identPattern is what a database or cluster name may look like. Names are pasted into SQL
// (DDL cannot bind them), so anything else is refused rather than quoted.
var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,199}$`)

// ValidDatabase reports whether name can be used as a neonmeter database name.
func ValidDatabase(name string) bool { return identPattern.MatchString(name) }

// ValidCluster reports whether name can be used as the name of the ClickHouse cluster.
func ValidCluster(name string) bool { return identPattern.MatchString(name) }

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
)

// engineClause renders a table engine of the table created by stmt. On one server the engine
// is used as written. On a cluster ReplacingMergeTree(v) becomes
// ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<table>', '{replica}', v):
// the replicas of a shard share the ZooKeeper path, and the server's own macros fill in
// {shard} and {replica}. The database is part of the path, so databases never share one.
func engineClause(engine, stmt, db, cluster string) (string, error) {
	if cluster == "" {
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
	args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, t[1])
	if m[2] != "" {
		args += ", " + m[2]
	}
	return "Replicated" + m[1] + "(" + args + ")", nil
}

// render fills the placeholders of text for database db on cluster (empty: one server).
func render(text, db, cluster string) (string, error) {
	if !ValidDatabase(db) {
		return "", fmt.Errorf("database name %q: must be letters, digits and underscores", db)
	}
	if cluster != "" && !ValidCluster(cluster) {
		return "", fmt.Errorf("cluster name %q: must be letters, digits and underscores", cluster)
	}
	var bad []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		switch name, arg := sub[1], sub[2]; {
		case name == "db" && arg == "":
			return db
		case name == "on_cluster" && arg == "":
			return onClusterClause(cluster)
		case name == "engine" && arg != "":
			e, err := engineClause(arg, text, db, cluster)
			if err != nil {
				bad = append(bad, err.Error())
				return m
			}
			return e
		default:
			bad = append(bad, "unknown placeholder "+m)
			return m
		}
	})
	if len(bad) > 0 {
		return "", errors.New(strings.Join(bad, "; "))
	}
	return out, nil
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
