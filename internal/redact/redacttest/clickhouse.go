package redacttest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// sampleRows bounds how many matching values of one column are read to measure the longest
// prefix; the count of matching rows is exact.
const sampleRows = 1000

// skippedEngines hold no rows of their own: a materialized view's rows are scanned in its
// inner table, a view's in the tables it reads.
var skippedEngines = []string{"View", "MaterializedView", "LiveView", "WindowView", "Dictionary", "Kafka"}

// stringColumn is a column that can hold text, with the expression reading it as one String.
type stringColumn struct {
	table, name, expr string
}

// ScanClickHouse scans every String-like column (String, FixedString, and Nullable,
// LowCardinality and Array forms of them) of every table of database db, over conn (the
// native protocol, as schema.Open or chtest.Connect give it). Findings are named
// "db.table.column" with the number of rows holding each secret's prefix. It is an error when
// db has no such column at all: a scan of nothing proves nothing.
func ScanClickHouse(ctx context.Context, conn driver.Conn, db string, secrets ...string) ([]Finding, error) {
	cols, err := stringColumns(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("redacttest: database %s has no String column to scan", db)
	}
	var heads []string
	var which []int // index in secrets of each head
	for i, s := range secrets {
		if h := head(s); h != "" {
			heads, which = append(heads, h), append(which, i)
		}
	}
	if len(heads) == 0 {
		return nil, nil
	}
	var out []Finding
	for _, c := range cols {
		f, err := scanColumn(ctx, conn, db, c, heads, which, secrets)
		if err != nil {
			return out, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// stringColumns lists the String-like columns of db's tables that hold rows.
func stringColumns(ctx context.Context, conn driver.Conn, db string) ([]stringColumn, error) {
	skipped := map[string]bool{}
	err := each(ctx, conn, "SELECT name, engine FROM system.tables WHERE database = ?", db, func(v []string) {
		skipped[v[0]] = slices.Contains(skippedEngines, v[1])
	}, 2)
	if err != nil {
		return nil, err
	}
	var cols []stringColumn
	err = each(ctx, conn, "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name", db, func(v []string) {
		if skip, known := skipped[v[0]]; !known || skip {
			return
		}
		if expr, ok := stringExpr(quote(v[1]), v[2]); ok {
			cols = append(cols, stringColumn{table: v[0], name: v[1], expr: expr})
		}
	}, 3)
	return cols, err
}

// each runs a query of n String columns about database db and calls f with each row.
func each(ctx context.Context, conn driver.Conn, query, db string, f func([]string), n int) error {
	rows, err := conn.Query(ctx, query, db)
	if err != nil {
		return fmt.Errorf("redacttest: list the tables of %s: %w", db, err)
	}
	defer rows.Close()
	v := make([]string, n)
	dest := make([]any, n)
	for i := range v {
		dest[i] = &v[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("redacttest: list the tables of %s: %w", db, err)
		}
		f(v)
	}
	return rows.Err()
}

// stringExpr returns an expression reading column col of type typ as one String, or false for
// a type that holds no free text (numbers, dates, enums, UUIDs).
func stringExpr(col, typ string) (string, bool) {
	if inner, ok := unwrap(typ, "Array"); ok {
		elem, ok := stringExpr("x", inner)
		if !ok {
			return "", false
		}
		return fmt.Sprintf("arrayStringConcat(arrayMap(x -> %s, %s), '\\n')", elem, col), true
	}
	nullable := false
	for {
		if inner, ok := unwrap(typ, "LowCardinality"); ok {
			typ = inner
		} else if inner, ok := unwrap(typ, "Nullable"); ok {
			typ, nullable = inner, true
		} else {
			break
		}
	}
	if typ != "String" && !strings.HasPrefix(typ, "FixedString(") {
		return "", false
	}
	if nullable {
		return fmt.Sprintf("ifNull(toString(%s), '')", col), true
	}
	return fmt.Sprintf("toString(%s)", col), true
}

// unwrap returns T of a type "name(T)".
func unwrap(typ, name string) (string, bool) {
	if strings.HasPrefix(typ, name+"(") && strings.HasSuffix(typ, ")") {
		return typ[len(name)+1 : len(typ)-1], true
	}
	return "", false
}

// quote quotes a ClickHouse identifier (tables of materialized views are named ".inner.…").
func quote(name string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), "`", "\\`") + "`"
}

// scanColumn counts the rows of one column holding each head, and measures the longest prefix
// in a sample of them.
func scanColumn(ctx context.Context, conn driver.Conn, db string, c stringColumn, heads []string, which []int, secrets []string) ([]Finding, error) {
	from := fmt.Sprintf("(SELECT %s AS e FROM %s.%s)", c.expr, quote(db), quote(c.table))
	where := fmt.Sprintf("%s.%s.%s", db, c.table, c.name)
	counts := make([]uint64, len(heads))
	sel := make([]string, len(heads))
	dest := make([]any, len(heads))
	args := make([]any, len(heads))
	for i, h := range heads {
		sel[i], dest[i], args[i] = "countIf(position(e, ?) > 0)", &counts[i], h
	}
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+from, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("redacttest: scan %s: %w", where, err)
	}
	var out []Finding
	for i, n := range counts {
		if n == 0 {
			continue
		}
		f, err := longestIn(ctx, conn, from, where, heads[i], which[i], secrets)
		if err != nil {
			return out, err
		}
		f.Rows = n
		out = append(out, f)
	}
	return out, nil
}

// longestIn reads up to sampleRows values of from holding head and returns the longest prefix
// of secrets[secret] among them.
func longestIn(ctx context.Context, conn driver.Conn, from, where, head string, secret int, secrets []string) (Finding, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT e FROM %s WHERE position(e, ?) > 0 LIMIT %d", from, sampleRows), head)
	if err != nil {
		return Finding{}, fmt.Errorf("redacttest: scan %s: %w", where, err)
	}
	defer rows.Close()
	best := Finding{Where: where, Secret: secret}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return Finding{}, fmt.Errorf("redacttest: scan %s: %w", where, err)
		}
		for _, f := range findIn(where, []byte(v), secrets) {
			if f.Secret == secret && f.Len > best.Len {
				best = f
			}
		}
	}
	return best, rows.Err()
}
