package schema

import (
	"context"
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// codeUnknownTable is ClickHouse's error code of a table that does not exist.
const codeUnknownTable = 60

// Pending returns the embedded migrations not yet applied to database: all of them when the
// database or its schema_migrations table does not exist. Commands that need neonmeter's tables
// check it first, so an unmigrated database is reported as "run migrate" rather than as a
// missing table halfway through the work. It creates nothing.
func Pending(ctx context.Context, conn driver.Conn, database string) ([]Migration, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	done, err := appliedMigrations(ctx, conn, database)
	switch {
	case missingSchema(err):
		return migs, nil
	case err != nil:
		return nil, err
	}
	var pending []Migration
	for _, m := range migs {
		if _, ok := done[m.Version]; !ok {
			pending = append(pending, m)
		}
	}
	return pending, nil
}

// missingSchema reports whether err says the database or its schema_migrations table does not
// exist.
func missingSchema(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == codeUnknownTable || ex.Code == codeUnknownDatabase)
}
