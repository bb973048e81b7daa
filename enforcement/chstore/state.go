package chstore

import (
	"context"
	"fmt"
	"math"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// States returns every project's state (the row of the highest version).
func (s *Store) States(ctx context.Context) (map[string]enforcement.State, error) {
	return byProject(ctx, s, "enforcement states", statesQuery(), func(row schema.Row) (string, enforcement.State, error) {
		var st enforcement.State
		var level string
		var pending, gone uint8
		var idle uint32
		err := row.Scan(&st.ProjectID, &st.PeriodStart, &st.Plan, &level, &st.OverSince, &st.ReleasedPeriod, &st.Applied,
			&pending, &st.ObservedAt, &gone, &st.Prior, &idle, &st.UpdatedAt, &st.Version)
		st.Level, st.EndpointsPending, st.Gone, st.IdleOverMax = enforcement.Level(level), pending != 0, gone != 0, int(idle)
		st.PeriodStart, st.OverSince, st.ReleasedPeriod = schema.FromDB(st.PeriodStart), schema.FromDB(st.OverSince), schema.FromDB(st.ReleasedPeriod)
		st.ObservedAt, st.UpdatedAt = schema.FromDB(st.ObservedAt), schema.FromDB(st.UpdatedAt)
		return st.ProjectID, st, err
	})
}

func statesQuery() schema.Query {
	return schema.Query{Name: "enforcement.states", Kind: schema.KindSelect, SQL: `SELECT project_id, period_start, plan, level, over_since, released_period, applied,
    endpoints_pending, observed_at, gone, prior, idle_over_max, updated_at, version
FROM {db}.enforcement_state FINAL`}
}

// WriteStates writes states in one batch; none writes nothing.
func (s *Store) WriteStates(ctx context.Context, states []enforcement.State) error {
	return writeChecked(ctx, s, "write enforcement states", states, checkState, writeStatesQuery)
}

func writeStatesQuery(states []enforcement.State) schema.Query {
	return schema.Query{Name: "enforcement.write_states", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.enforcement_state (project_id, period_start, plan, level, over_since, released_period, applied, endpoints_pending, observed_at, gone, prior, idle_over_max, updated_at, version)",
		Rows: schema.RowsOf(states, func(st enforcement.State) []any {
			return []any{st.ProjectID, schema.UTC(st.PeriodStart), st.Plan, string(st.Level), schema.UTC(st.OverSince),
				schema.UTC(st.ReleasedPeriod), st.Applied, flag(st.EndpointsPending), schema.UTC(st.ObservedAt), flag(st.Gone), st.Prior,
				uint32(min(max(st.IdleOverMax, 0), math.MaxUint32)), schema.UTC(st.UpdatedAt), st.Version}
		})}
}

func checkState(st enforcement.State) error {
	if st.ProjectID == "" || st.Version == 0 {
		return fmt.Errorf("project %q: need a project and a version", st.ProjectID)
	}
	return nil
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
