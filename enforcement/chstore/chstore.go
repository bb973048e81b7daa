// Package chstore is enforcement's storage on ClickHouse: every statement enforcement runs, and
// Store, which implements enforcement.Store. It reads the usage and the hourly collection
// watermarks the collector publishes (usage_facts by its key columns, as usage_hourly has them,
// and collection_watermarks) and owns enforcement_state, enforcement_audit and
// enforcement_breaker.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// Store is enforcement's storage in one database.
type Store struct {
	conn driver.Conn
	db   string
}

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{conn: conn, db: database} }

var _ enforcement.Store = (*Store)(nil)

// UsageSince calls fn with every project's usage per metric in [from, to), in one query for the
// whole fleet. It reads usage_facts FINAL with the filter on the key column hour, which every
// version of a fact shares, so the result equals usage_hourly's; 18.16 does not push WHERE into
// views, and this is the cycle's hot path (docs/data-model.md).
func (s *Store) UsageSince(ctx context.Context, from, to time.Time, fn func(enforcement.PeriodUsage)) error {
	err := usageSinceQuery(from, to).Each(ctx, s.conn, s.db, func(row schema.Row) error {
		var u enforcement.PeriodUsage
		if err := row.Scan(&u.ProjectID, &u.OrgID, &u.Metric, &u.Sum, &u.Max); err != nil {
			return err
		}
		fn(u)
		return nil
	})
	if err != nil {
		return fmt.Errorf("usage since %s: %w", from.UTC().Format(time.RFC3339), err)
	}
	return nil
}

func usageSinceQuery(from, to time.Time) schema.Query {
	return schema.Query{Name: "enforcement.usage", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to)}, SQL: `SELECT project_id, any(org_id), metric, sum(value), max(value)
FROM {db}.usage_facts FINAL
WHERE hour >= ? AND hour < ?
GROUP BY project_id, metric`}
}

// HourlyWatermarks returns the hourly watermark of every (org, endpoint) from the collector's
// collection_watermarks.
func (s *Store) HourlyWatermarks(ctx context.Context) ([]enforcement.HourlyWatermark, error) {
	out, err := schema.All(ctx, hourlyWatermarksQuery(), s.conn, s.db, func(row schema.Row) (enforcement.HourlyWatermark, error) {
		var w enforcement.HourlyWatermark
		err := row.Scan(&w.OrgID, &w.Endpoint, &w.CoveredUntil)
		w.CoveredUntil = w.CoveredUntil.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("hourly watermarks: %w", err)
	}
	return out, nil
}

func hourlyWatermarksQuery() schema.Query {
	return schema.Query{Name: "enforcement.watermarks", Kind: schema.KindSelect, SQL: `SELECT org_id, toString(endpoint), covered_until
FROM {db}.collection_watermarks FINAL
WHERE granularity = 'hourly'
ORDER BY org_id, endpoint`}
}
