package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// SQL text of migrations and queries carries placeholders that render fills in:
//
//	{db}                              the database name (validated as an identifier)
//	{on_cluster}                      " ON CLUSTER <name>" on a cluster; empty today
//	{engine:ReplacingMergeTree(ver)}  the table engine; today exactly the text given
//
// Everything that changes when neonmeter moves to a replicated cluster (ON CLUSTER clauses,
// Replicated* engines with their ZooKeeper path and replica macros) is decided by
// onClusterClause and engineClause below and nowhere else, so that move touches two functions
// instead of every statement.
var placeholder = regexp.MustCompile(`\{([a-z_]+)(?::([^{}]*))?\}`)

// identPattern is what a database name may look like. Names are pasted into SQL (DDL cannot
// bind them), so anything else is refused rather than quoted.
var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,199}$`)

// ValidDatabase reports whether name can be used as a neonmeter database name.
func ValidDatabase(name string) bool { return identPattern.MatchString(name) }

// onClusterClause is the ON CLUSTER clause of DDL and ALTER statements. A single server needs
// none.
func onClusterClause() string { return "" }

// engineClause renders a table engine. On a single server the engine is used as written; a
// cluster would turn ReplacingMergeTree(v) into ReplicatedReplacingMergeTree('<path>',
// '{replica}', v) here.
func engineClause(engine string) string { return engine }

// render fills the placeholders of text for database db.
func render(text, db string) (string, error) {
	if !ValidDatabase(db) {
		return "", fmt.Errorf("database name %q: must be letters, digits and underscores", db)
	}
	var bad []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		switch name, arg := sub[1], sub[2]; {
		case name == "db" && arg == "":
			return db
		case name == "on_cluster" && arg == "":
			return onClusterClause()
		case name == "engine" && arg != "":
			return engineClause(arg)
		default:
			bad = append(bad, m)
			return m
		}
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown placeholder %s", strings.Join(bad, ", "))
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
