// Package chstore is enforcement's storage on ClickHouse: every statement enforcement runs, and
// Store, which implements enforcement.Store. It reads the usage, the hourly collection
// watermarks and the per-project progress the collector publishes (usage_facts by its key
// columns, as usage_hourly has them, collection_watermarks and collection_progress) and owns
// enforcement_state, enforcement_audit, enforcement_breaker and enforcement_at_risk.
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

// byProject reads q's rows, the newest of each project, into a map by project; scan reads one
// row and returns its project. what names the read in errors.
func byProject[T any](ctx context.Context, s *Store, what string, q schema.Query, scan func(schema.Row) (string, T, error)) (map[string]T, error) {
	out := map[string]T{}
	err := q.Each(ctx, s.conn, s.db, func(row schema.Row) error {
		id, v, err := scan(row)
		if err != nil {
			return err
		}
		out[id] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// writeChecked writes rows in one batch after checking each (none writes nothing); what names
// the write in errors.
func writeChecked[T any](ctx context.Context, s *Store, what string, rows []T, check func(T) error, q func([]T) schema.Query) error {
	if err := schema.InsertChecked(ctx, s.conn, s.db, rows, check, q); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
