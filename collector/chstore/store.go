// Package chstore is the collector's storage on ClickHouse: hourly facts (usage_facts, read
// downstream through the usage_hourly view), coarse facts (usage_coarse), revisions
// (usage_revisions), runs (collection_runs) and watermarks (collection_watermarks). Every
// statement it runs is listed, with sample arguments, by Statements.
package chstore

import (
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/collector"
)

// Store implements the collector's Store, CoarseStore and StatusReader on one database.
type Store struct {
	conn driver.Conn
	db   string
}

var (
	_ collector.Store        = (*Store)(nil)
	_ collector.CoarseStore  = (*Store)(nil)
	_ collector.StatusReader = (*Store)(nil)
)

// New uses database over conn.
func New(conn driver.Conn, database string) *Store {
	return &Store{conn: conn, db: database}
}
