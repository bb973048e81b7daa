package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/schema"
)

// MetricTotal is one metric's usage over a window: how many hours have a row and their sum.
type MetricTotal struct {
	Metric string
	Hours  uint64
	Total  uint64
}

// MetricTotals sums an organization's usage per metric over [from, to) through usage_hourly.
func (s *Store) MetricTotals(ctx context.Context, orgID string, from, to time.Time) ([]MetricTotal, error) {
	out, err := schema.All(ctx, MetricTotalsQuery(orgID, from, to), s.Conn, s.DB, func(rows schema.Row) (MetricTotal, error) {
		var t MetricTotal
		err := rows.Scan(&t.Metric, &t.Hours, &t.Total)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("metric totals org %s: %w", orgID, err)
	}
	return out, nil
}

// MetricTotalsQuery is the statement of MetricTotals, exported so the demo can show it.
func MetricTotalsQuery(orgID string, from, to time.Time) schema.Query {
	return schema.Query{Name: "usage.metric_totals", Kind: schema.KindSelect, Args: []any{orgID, schema.UTC(from), schema.UTC(to)}, SQL: `SELECT metric, count() AS hours, sum(value) AS total
FROM {db}.usage_hourly
WHERE org_id = ? AND hour >= ? AND hour < ?
GROUP BY metric
ORDER BY metric`}
}
