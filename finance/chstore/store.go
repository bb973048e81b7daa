// Package chstore is finance's storage on ClickHouse: the cost table it loads (neon_unit_costs,
// plan_unit_prices; schema/migrations/0011_finance.sql) and its reads of usage_hourly,
// account_history, the billing tables and enforcement_audit. It implements finance.Store.
package chstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// Store runs finance's statements in one database.
type Store struct{ schema.Tables }

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{schema.NewTables(conn, database)} }

var _ finance.Store = (*Store)(nil)

// LoadCosts writes the whole cost table with one version, the load's instant in nanoseconds.
func (s *Store) LoadCosts(ctx context.Context, c *finance.Costs, defaultPlan string, at time.Time) error {
	version := uint64(at.UnixNano())
	var costs, prices [][]any
	for _, m := range slices.Sorted(maps.Keys(c.Neon)) {
		u := c.Neon[m]
		costs = append(costs, []any{m, u.Unit, u.Divisor, u.Micros, c.Currency, c.NeonPlan, schema.UTC(at), version})
	}
	add := func(plan string, p finance.UnitPrice) {
		up := uint8(0)
		if p.Rounding == plans.RoundCeil {
			up = 1
		}
		prices = append(prices, []any{plan, p.Metric, p.Target, p.Unit, p.Divisor, up, p.Micros, c.Currency, schema.UTC(at), version})
	}
	for _, plan := range slices.Sorted(maps.Keys(c.Prices)) {
		for _, m := range slices.Sorted(maps.Keys(c.Prices[plan])) {
			add(plan, c.Prices[plan][m])
			if plan == defaultPlan {
				add("", c.Prices[plan][m])
			}
		}
	}
	if err := insertCostsQuery(costs).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("finance load costs from %s: %w", c.File, err)
	}
	if err := insertPricesQuery(prices).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("finance load prices from %s: %w", c.File, err)
	}
	return nil
}

func (s *Store) Margin(ctx context.Context, customer string, from, to time.Time) ([]finance.MarginRow, error) {
	return schema.All(ctx, marginQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (m finance.MarginRow, err error) {
		var cost, units, revenue uint64
		err = r.Scan(&m.CustomerID, &m.Plan, &m.Month, &m.Metric, &m.Raw, &cost, &m.Target, &units, &revenue)
		m.Month = m.Month.UTC()
		m.CostMicros, m.Units, m.RevenueMicros = int64(cost), int64(units), int64(revenue)
		return m, err
	})
}

func (s *Store) Hourly(ctx context.Context, customer string, from, to time.Time) ([]finance.HourRow, error) {
	return schema.All(ctx, hourlyQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (h finance.HourRow, err error) {
		err = r.Scan(&h.Metric, &h.Hour, &h.Raw)
		h.Hour = h.Hour.UTC()
		return h, err
	})
}

func (s *Store) Projects(ctx context.Context, customer string, to time.Time) ([]finance.ProjectRow, error) {
	return schema.All(ctx, projectsQuery(customer, to), s.Conn, s.DB, func(r schema.Row) (p finance.ProjectRow, err error) {
		err = r.Scan(&p.ProjectID, &p.ValidFrom, &p.CustomerID, &p.Plan)
		p.ValidFrom = p.ValidFrom.UTC()
		return p, err
	})
}

func (s *Store) Billed(ctx context.Context, customer string, from, to time.Time) ([]finance.BilledRow, error) {
	return schema.All(ctx, billedQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (b finance.BilledRow, err error) {
		var hours uint64
		err = r.Scan(&b.CustomerID, &b.Target, &b.Sink, &b.Metric, &hours, &b.Value, &b.Confirmed)
		b.Hours = int64(hours)
		return b, err
	})
}

func (s *Store) Drift(ctx context.Context, customer string, from, to time.Time) ([]finance.DriftRow, error) {
	return schema.All(ctx, driftQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (d finance.DriftRow, err error) {
		err = r.Scan(&d.RunID, &d.CheckedAt, &d.CustomerID, &d.Target, &d.Sink, &d.Bucket, &d.Expected, &d.Actual, &d.Drift)
		d.CheckedAt, d.Bucket = d.CheckedAt.UTC(), d.Bucket.UTC()
		return d, err
	})
}

func (s *Store) Late(ctx context.Context, customer string, from, to time.Time) ([]finance.LateRow, error) {
	return schema.All(ctx, lateQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (l finance.LateRow, err error) {
		err = r.Scan(&l.CustomerID, &l.Target, &l.Sink, &l.Metric, &l.Reason, &l.Hour, &l.DetectedAt, &l.OldValue, &l.NewValue, &l.Amount)
		l.Hour, l.DetectedAt = l.Hour.UTC(), l.DetectedAt.UTC()
		return l, err
	})
}

func (s *Store) Actions(ctx context.Context, customer string, from, to time.Time) ([]finance.ActionRow, error) {
	return schema.All(ctx, actionsQuery(customer, from, to), s.Conn, s.DB, func(r schema.Row) (a finance.ActionRow, err error) {
		err = r.Scan(&a.At, &a.ProjectID, &a.Plan, &a.Metric, &a.Level, &a.Action, &a.Mode, &a.Outcome, &a.Usage, &a.Limit)
		a.At = a.At.UTC()
		return a, err
	})
}
