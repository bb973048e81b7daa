// Package chstore is finance's storage on ClickHouse: the cost table it loads (neon_unit_costs,
// plan_unit_prices; schema/migrations/0011_finance.sql) and its reads of usage_hourly,
// account_history, the billing tables and enforcement_audit. It implements finance.Store.
package chstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// Store runs finance's statements in one database.
type Store struct {
	conn driver.Conn
	db   string
}

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{conn: conn, db: database} }

var _ finance.Store = (*Store)(nil)

// LoadCosts writes the whole cost table with one version, the load's instant in nanoseconds.
func (s *Store) LoadCosts(ctx context.Context, c *finance.Costs, defaultPlan string, at time.Time) error {
	version := uint64(at.UnixNano())
	var costs, prices [][]any
	for _, m := range sortedKeys(c.Neon) {
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
	for _, plan := range sortedKeys(c.Prices) {
		for _, m := range sortedKeys(c.Prices[plan]) {
			add(plan, c.Prices[plan][m])
			if plan == defaultPlan {
				add("", c.Prices[plan][m])
			}
		}
	}
	if err := insertCostsQuery(costs).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("finance load costs from %s: %w", c.File, err)
	}
	if err := insertPricesQuery(prices).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("finance load prices from %s: %w", c.File, err)
	}
	return nil
}

// scan runs q and calls each for every row.
func (s *Store) scan(ctx context.Context, q schema.Query, each func(driver.Rows) error) error {
	rows, err := q.Select(ctx, s.conn, s.db)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return fmt.Errorf("%s: scan: %w", q.Name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", q.Name, err)
	}
	return nil
}

func (s *Store) Margin(ctx context.Context, customer string, from, to time.Time) ([]finance.MarginRow, error) {
	var out []finance.MarginRow
	err := s.scan(ctx, marginQuery(customer, from, to), func(r driver.Rows) error {
		var m finance.MarginRow
		var cost, units, revenue uint64
		if err := r.Scan(&m.CustomerID, &m.Plan, &m.Month, &m.Metric, &m.Raw, &cost, &m.Target, &units, &revenue); err != nil {
			return err
		}
		m.Month = m.Month.UTC()
		m.CostMicros, m.Units, m.RevenueMicros = int64(cost), int64(units), int64(revenue)
		out = append(out, m)
		return nil
	})
	return out, err
}

func (s *Store) Hourly(ctx context.Context, customer string, from, to time.Time) ([]finance.HourRow, error) {
	var out []finance.HourRow
	err := s.scan(ctx, hourlyQuery(customer, from, to), func(r driver.Rows) error {
		var h finance.HourRow
		if err := r.Scan(&h.Metric, &h.Hour, &h.Raw); err != nil {
			return err
		}
		h.Hour = h.Hour.UTC()
		out = append(out, h)
		return nil
	})
	return out, err
}

func (s *Store) Projects(ctx context.Context, customer string, to time.Time) ([]finance.ProjectRow, error) {
	var out []finance.ProjectRow
	err := s.scan(ctx, projectsQuery(customer, to), func(r driver.Rows) error {
		var p finance.ProjectRow
		if err := r.Scan(&p.ProjectID, &p.ValidFrom, &p.CustomerID, &p.Plan); err != nil {
			return err
		}
		p.ValidFrom = p.ValidFrom.UTC()
		out = append(out, p)
		return nil
	})
	return out, err
}

func (s *Store) Billed(ctx context.Context, customer string, from, to time.Time) ([]finance.BilledRow, error) {
	var out []finance.BilledRow
	err := s.scan(ctx, billedQuery(customer, from, to), func(r driver.Rows) error {
		var b finance.BilledRow
		var hours uint64
		if err := r.Scan(&b.CustomerID, &b.Target, &b.Sink, &b.Metric, &hours, &b.Value, &b.Confirmed); err != nil {
			return err
		}
		b.Hours = int64(hours)
		out = append(out, b)
		return nil
	})
	return out, err
}

func (s *Store) Drift(ctx context.Context, customer string, from, to time.Time) ([]finance.DriftRow, error) {
	var out []finance.DriftRow
	err := s.scan(ctx, driftQuery(customer, from, to), func(r driver.Rows) error {
		var d finance.DriftRow
		if err := r.Scan(&d.RunID, &d.CheckedAt, &d.CustomerID, &d.Target, &d.Sink, &d.Bucket, &d.Expected, &d.Actual, &d.Drift); err != nil {
			return err
		}
		d.CheckedAt, d.Bucket = d.CheckedAt.UTC(), d.Bucket.UTC()
		out = append(out, d)
		return nil
	})
	return out, err
}

func (s *Store) Late(ctx context.Context, customer string, from, to time.Time) ([]finance.LateRow, error) {
	var out []finance.LateRow
	err := s.scan(ctx, lateQuery(customer, from, to), func(r driver.Rows) error {
		var l finance.LateRow
		if err := r.Scan(&l.CustomerID, &l.Target, &l.Sink, &l.Metric, &l.Reason, &l.Hour, &l.DetectedAt, &l.OldValue, &l.NewValue, &l.Amount); err != nil {
			return err
		}
		l.Hour, l.DetectedAt = l.Hour.UTC(), l.DetectedAt.UTC()
		out = append(out, l)
		return nil
	})
	return out, err
}

func (s *Store) Actions(ctx context.Context, customer string, from, to time.Time) ([]finance.ActionRow, error) {
	var out []finance.ActionRow
	err := s.scan(ctx, actionsQuery(customer, from, to), func(r driver.Rows) error {
		var a finance.ActionRow
		if err := r.Scan(&a.At, &a.ProjectID, &a.Plan, &a.Metric, &a.Level, &a.Action, &a.Mode, &a.Outcome, &a.Usage, &a.Limit); err != nil {
			return err
		}
		a.At = a.At.UTC()
		out = append(out, a)
		return nil
	})
	return out, err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
