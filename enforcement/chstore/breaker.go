package chstore

import (
	"context"
	"fmt"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// LastBreakerEvent returns the newest trip or acknowledgement of the circuit breaker, the zero
// value when there is none.
func (s *Store) LastBreakerEvent(ctx context.Context) (enforcement.BreakerEvent, error) {
	var e enforcement.BreakerEvent
	err := lastBreakerEventQuery().Each(ctx, s.conn, s.db, func(row schema.Row) error {
		var kind string
		var enforcing, capN uint32
		if err := row.Scan(&e.At, &kind, &e.CycleID, &enforcing, &capN, &e.Version); err != nil {
			return err
		}
		e.At, e.Kind, e.Enforcing, e.Cap = e.At.UTC(), enforcement.BreakerEventKind(kind), int(enforcing), int(capN)
		return nil
	})
	if err != nil {
		return enforcement.BreakerEvent{}, fmt.Errorf("enforcement breaker: %w", err)
	}
	return e, nil
}

func lastBreakerEventQuery() schema.Query {
	return schema.Query{Name: "enforcement.breaker_last", Kind: schema.KindSelect, SQL: `SELECT at, event, cycle_id, enforcing, cap, version
FROM {db}.enforcement_breaker
ORDER BY version DESC
LIMIT 1`}
}

// InsertBreakerEvent appends a trip or an acknowledgement.
func (s *Store) InsertBreakerEvent(ctx context.Context, e enforcement.BreakerEvent) error {
	if e.Kind == "" || e.Version == 0 {
		return fmt.Errorf("insert enforcement breaker event: need a kind and a version, got %q and %d", e.Kind, e.Version)
	}
	if err := insertBreakerEventQuery(e).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert enforcement breaker event %s: %w", e.Kind, err)
	}
	return nil
}

func insertBreakerEventQuery(e enforcement.BreakerEvent) schema.Query {
	return schema.Query{Name: "enforcement.breaker_insert", Kind: schema.KindInsert,
		Rows: [][]any{{schema.UTC(e.At), string(e.Kind), e.CycleID, uint32(max(e.Enforcing, 0)), uint32(max(e.Cap, 0)), e.Version}},
		SQL:  "INSERT INTO {db}.enforcement_breaker (at, event, cycle_id, enforcing, cap, version)"}
}
