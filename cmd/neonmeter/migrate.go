package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/neonmeter/neonmeter/schema"
)

// MigrateCommand applies the embedded schema migrations.
type MigrateCommand struct{ *Env }

func (c *MigrateCommand) Synopsis() string { return "create or upgrade the ClickHouse schema" }

func (c *MigrateCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter migrate

Creates the database NEONMETER_CLICKHOUSE_DATABASE if missing and applies every embedded
migration not yet recorded in its schema_migrations table. Safe to run again and from several
processes at once: every statement is idempotent.`)
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.logger(cfg)
	conn, err := openClickHouse(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	n, err := schema.Migrate(ctx, conn, cfg.ClickHouseDB, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "migrate: %d migration(s) applied to database %s\n", n, cfg.ClickHouseDB)
	return nil
}
