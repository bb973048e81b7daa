// Package chstore is the what-if simulation's own read on ClickHouse: what enforcement actually
// did in a period, summarized per project from enforcement_audit. It only reads; the usage and
// ledger reads come from billing/chstore and enforcement/chstore unchanged.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/finance/whatif"
	"github.com/neonmeter/neonmeter/schema"
)

// Store reads one database.
type Store struct{ schema.Tables }

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{schema.NewTables(conn, database)} }

var _ whatif.OutcomeReads = (*Store)(nil)

// Statements lists every statement of the package, with sample arguments, for the registry.
func Statements() []schema.Query {
	return []schema.Query{outcomesQuery(schema.SampleFrom, schema.SampleTo)}
}

// Outcomes returns, per project audited in [from, to), the worst level audited and whether it
// was throttled or suspended: an action with that reason that was applied (or planned, in
// dry-run mode), or a decision to that status that nothing held back.
func (s *Store) Outcomes(ctx context.Context, from, to time.Time) ([]whatif.Outcome, error) {
	out, err := schema.All(ctx, outcomesQuery(from, to), s.Conn, s.DB, func(r schema.Row) (o whatif.Outcome, err error) {
		var rank, throttled, suspended uint8
		err = r.Scan(&o.ProjectID, &rank, &throttled, &suspended)
		o.Level = []enforcement.Level{enforcement.LevelOK, enforcement.LevelWarning, enforcement.LevelOver}[min(rank, 2)]
		o.Throttled, o.Suspended = throttled == 1, suspended == 1
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("enforcement outcomes %s: %w", from.UTC().Format("2006-01"), err)
	}
	return out, nil
}

func outcomesQuery(from, to time.Time) schema.Query {
	return schema.Query{Name: "whatif.enforcement_outcomes", Kind: schema.KindSelect,
		Args: []any{schema.UTC(from), schema.UTC(to)}, SQL: `SELECT project_id,
    toUInt8(max(multiIf(level = 'over', 2, level = 'warning', 1, 0))) AS worst,
    toUInt8(max((action != 'decision' AND reason = 'throttle' AND outcome IN ('applied', 'planned'))
        OR (action = 'decision' AND reason = 'throttled'))) AS throttled,
    toUInt8(max((action != 'decision' AND reason = 'suspend' AND outcome IN ('applied', 'planned'))
        OR (action = 'decision' AND reason = 'suspended'))) AS suspended
FROM {db}.enforcement_audit
WHERE at >= ? AND at < ?
GROUP BY project_id
ORDER BY project_id`}
}
