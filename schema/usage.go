package schema

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MetricTotal is one metric's usage over a window: how many hours have a row and their sum.
type MetricTotal struct {
	Metric string
	Hours  uint64
	Total  uint64
}

// MetricTotals sums an organization's usage per metric over [from, to) through usage_hourly.
func MetricTotals(ctx context.Context, conn driver.Conn, db, orgID string, from, to time.Time) ([]MetricTotal, error) {
	rows, err := MetricTotalsQuery(orgID, from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("metric totals org %s: %w", orgID, err)
	}
	defer rows.Close()
	var out []MetricTotal
	for rows.Next() {
		var t MetricTotal
		if err := rows.Scan(&t.Metric, &t.Hours, &t.Total); err != nil {
			return nil, fmt.Errorf("metric totals org %s: scan: %w", orgID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// MetricTotalsQuery is the statement of MetricTotals, exported so the demo can show it.
func MetricTotalsQuery(orgID string, from, to time.Time) Query {
	return Query{Name: "usage.metric_totals", Kind: KindSelect, Args: []any{orgID, UTC(from), UTC(to)}, SQL: `SELECT metric, count() AS hours, sum(value) AS total
FROM {db}.usage_hourly
WHERE org_id = ? AND hour >= ? AND hour < ?
GROUP BY metric
ORDER BY metric`}
}

// Literal renders the statement for database db with its arguments written in as SQL
// literals, for people to read or paste into clickhouse-client. Strings, integers and times
// only; the product itself always binds arguments.
func (q Query) Literal(db string) (string, error) {
	text, err := q.Text(db)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	args := q.Args
	for _, part := range strings.SplitAfter(text, "?") {
		if !strings.HasSuffix(part, "?") {
			b.WriteString(part)
			continue
		}
		if len(args) == 0 {
			return "", fmt.Errorf("query %s: more placeholders than arguments", q.Name)
		}
		lit, err := literal(args[0])
		if err != nil {
			return "", fmt.Errorf("query %s: %w", q.Name, err)
		}
		b.WriteString(strings.TrimSuffix(part, "?") + lit)
		args = args[1:]
	}
	if len(args) != 0 {
		return "", fmt.Errorf("query %s: %d arguments left over", q.Name, len(args))
	}
	return b.String(), nil
}

func literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'", nil
	case time.Time:
		return "toDateTime('" + v.UTC().Format(time.DateTime) + "', 'UTC')", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	}
	return "", fmt.Errorf("no literal form for %T", v)
}
