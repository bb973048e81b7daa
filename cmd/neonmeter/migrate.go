package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/schema"
)

// MigrateCommand applies the embedded schema migrations.
type MigrateCommand struct{ *Env }

func (c *MigrateCommand) Synopsis() string { return "create or upgrade the ClickHouse schema" }

func (c *MigrateCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("migrate", `Usage: neonmeter migrate

Creates the database NEONMETER_CLICKHOUSE_DATABASE if missing and applies every embedded
migration not yet recorded in its schema_migrations table. Safe to run again and from several
processes at once: every statement is idempotent.`)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		conn, err := d.ClickHouse(ctx)
		if err != nil {
			return err
		}
		n, err := schema.Migrate(ctx, conn, d.cfg.ClickHouseDB, d.log)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "migrate: %d migration(s) applied to database %s\n", n, d.cfg.ClickHouseDB)
		return nil
	})
}

// requireMigrated refuses to work on a database that lacks migrations, naming the command that
// fixes it, before anything reads a table that is not there.
func requireMigrated(ctx context.Context, conn driver.Conn, db string) error {
	pending, err := schema.Pending(ctx, conn, db)
	if err != nil {
		return fmt.Errorf("check the schema of database %s: %w", db, err)
	}
	if len(pending) == 0 {
		return nil
	}
	names := make([]string, len(pending))
	for i, m := range pending {
		names[i] = fmt.Sprintf("%04d_%s", m.Version, m.Name)
	}
	return usagef("database %s (%s_CLICKHOUSE_DATABASE) lacks migration(s) %s: run `neonmeter migrate` first",
		db, envPrefix, strings.Join(names, ", "))
}
