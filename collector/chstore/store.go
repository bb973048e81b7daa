// Package chstore is the collector's storage on ClickHouse: hourly facts (usage_facts, read
// downstream through the usage_hourly view), coarse facts (usage_coarse), revisions
// (usage_revisions), runs (collection_runs), watermarks (collection_watermarks) and each
// project's progress (collection_progress), and it reads enforcement's at-risk set. Every
// statement it runs is listed, with sample arguments, by Statements.
package chstore

import (
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// Store implements the collector's Store, CoarseStore and StatusReader on one database.
type Store struct{ schema.Tables }

var (
	_ collector.Store           = (*Store)(nil)
	_ collector.CoarseStore     = (*Store)(nil)
	_ collector.StatusReader    = (*Store)(nil)
	_ collector.FleetStore      = (*Store)(nil)
	_ collector.FreshnessReader = (*Store)(nil)
)

// New uses database over conn.
func New(conn driver.Conn, database string) *Store { return &Store{schema.NewTables(conn, database)} }
