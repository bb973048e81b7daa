package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Kind says how a Query is run.
type Kind uint8

const (
	// KindSelect returns rows (conn.Query).
	KindSelect Kind = iota + 1
	// KindExec is DDL or ALTER (conn.Exec).
	KindExec
	// KindInsert is a batch insert: SQL is "INSERT INTO t (columns)" and each of Rows is
	// appended to a batch (conn.PrepareBatch). 18.16 refuses batches that do not name columns.
	KindInsert
)

func (k Kind) String() string {
	switch k {
	case KindSelect:
		return "select"
	case KindExec:
		return "exec"
	case KindInsert:
		return "insert"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Query is one SQL statement of the product with its arguments. Statements are values rather
// than strings scattered through the code so that Catalog can list every one of them and tests
// can print them and run each on ClickHouse 18.16 and on current ClickHouse.
type Query struct {
	// Name identifies the statement, like "facts.stored".
	Name string
	Kind Kind
	// SQL holds {db}, {on_cluster}, {engine:…}, {local:…} and {each_shard:…} placeholders
	// (sqltext.go; filled for the connection's database and cluster) and a ? per argument.
	// Arguments are bound client-side by clickhouse-go: 18.16 has no server-side parameters.
	SQL string
	// Args are bound in order to the ? of SQL (select and exec).
	Args []any
	// Rows are the rows of a batch insert, each in the column order SQL names.
	Rows [][]any
}

// Text returns the statement for database db on one server.
func (q Query) Text(db string) (string, error) { return q.TextOn(db, "") }

// TextOn returns the statement for database db on cluster (empty: one server) of one shard.
// Select, Exec and Insert render it for the cluster of their connection (ClusterOf), sharded
// or not.
func (q Query) TextOn(db, cluster string) (string, error) {
	return q.textAt(place{db: db, cluster: cluster})
}

func (q Query) textAt(p place) (string, error) {
	s, err := render(q.SQL, p)
	if err != nil {
		return "", fmt.Errorf("query %s: %w", q.Name, err)
	}
	return s, nil
}

// Run runs the statement in database db and reads and discards any rows it returns. Stores use
// Select, Exec and Insert; Run is for the registry's checks that every statement runs.
func (q Query) Run(ctx context.Context, conn driver.Conn, db string) error {
	switch q.Kind {
	case KindSelect:
		return q.Each(ctx, conn, db, func(Row) error { return nil })
	case KindExec:
		return q.Exec(ctx, conn, db)
	case KindInsert:
		return q.Insert(ctx, conn, db)
	}
	return fmt.Errorf("%s: unknown kind %v", q.Name, q.Kind)
}

// Select runs a KindSelect statement; the caller closes the rows.
func (q Query) Select(ctx context.Context, conn driver.Conn, db string) (driver.Rows, error) {
	text, err := q.textAt(placeOf(conn, db))
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, text, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.Name, err)
	}
	return rows, nil
}

// Row is one row of a Select, as a scan function of Each or All reads it.
type Row interface {
	Scan(dest ...any) error
}

// Each runs a KindSelect statement and calls scan once per row, in order; scan reads the row
// with row.Scan. The rows are closed, and the first error names the statement.
func (q Query) Each(ctx context.Context, conn driver.Conn, db string, scan func(Row) error) error {
	rows, err := q.Select(ctx, conn, db)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%s: scan: %w", q.Name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", q.Name, err)
	}
	return nil
}

// All runs a KindSelect statement and returns one value per row, as scan reads it.
func All[T any](ctx context.Context, q Query, conn driver.Conn, db string, scan func(Row) (T, error)) ([]T, error) {
	var out []T
	err := q.Each(ctx, conn, db, func(row Row) error {
		v, err := scan(row)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Exec runs a KindExec statement.
func (q Query) Exec(ctx context.Context, conn driver.Conn, db string) error {
	text, err := q.textAt(placeOf(conn, db))
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, text, q.Args...); err != nil {
		return fmt.Errorf("%s: %w", q.Name, err)
	}
	return nil
}

// Insert sends Rows as one batch. An empty batch sends nothing.
func (q Query) Insert(ctx context.Context, conn driver.Conn, db string) error {
	if len(q.Rows) == 0 {
		return nil
	}
	return q.sendBatch(ctx, conn, db, fmt.Sprintf("send %d rows", len(q.Rows)), func(batch driver.Batch) error {
		for i, row := range q.Rows {
			if err := batch.Append(row...); err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	})
}

// InsertChecked sends q(items), a batch insert, after check passed every item: one unfit item
// refuses the whole batch and nothing is sent.
func InsertChecked[T any](ctx context.Context, conn driver.Conn, db string, items []T, check func(T) error, q func([]T) Query) error {
	for _, it := range items {
		if err := check(it); err != nil {
			return err
		}
	}
	return q(items).Insert(ctx, conn, db)
}

// RowsOf lays items out as the Rows of a batch insert, one row per item.
func RowsOf[T any](items []T, row func(T) []any) [][]any {
	rows := make([][]any, len(items))
	for i, it := range items {
		rows[i] = row(it)
	}
	return rows
}

// InsertColumns sends one batch given as whole columns, in the column order SQL names.
func (q Query) InsertColumns(ctx context.Context, conn driver.Conn, db string, columns ...any) error {
	return q.sendBatch(ctx, conn, db, "send", func(batch driver.Batch) error {
		for i, col := range columns {
			if err := batch.Column(i).Append(col); err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
		}
		return nil
	})
}

// sendBatch prepares the statement as a batch, lets fill append to it and sends it; send names
// the last step in errors.
func (q Query) sendBatch(ctx context.Context, conn driver.Conn, db, send string, fill func(driver.Batch) error) error {
	text, err := q.textAt(placeOf(conn, db))
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, text)
	if err != nil {
		return fmt.Errorf("%s: prepare: %w", q.Name, err)
	}
	defer batch.Close()
	if err := fill(batch); err != nil {
		return fmt.Errorf("%s: %w", q.Name, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("%s: %s: %w", q.Name, send, err)
	}
	return nil
}

// UTC returns t in UTC truncated to whole seconds, what a DateTime('UTC') column holds. The
// zero time becomes the Unix epoch, DateTime's zero, since DateTime cannot hold year 1.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Second)
}

// FromDB turns a DateTime read back into Go: the epoch becomes the zero time again.
func FromDB(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// InList returns "?, ?, …" with n placeholders, for IN lists whose length varies.
func InList(n int) string {
	b := make([]byte, 0, 3*n)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

// MaxInList caps the project ids of one IN list so statements stay far below ClickHouse's
// max_query_size (256 KiB) whatever the caller passes; longer lists are read in chunks.
const MaxInList = 1000

// Chunks calls fn with slices of at most MaxInList project ids; nil ids call it once with
// nil (meaning every project), an empty non-nil list not at all.
func Chunks(ids []string, fn func([]string) error) error {
	if ids == nil {
		return fn(nil)
	}
	for start := 0; start < len(ids); start += MaxInList {
		if err := fn(ids[start:min(start+MaxInList, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}
