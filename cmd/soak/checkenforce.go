package main

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// enforcedMetric is the one metric the soak's catalog limits.
const enforcedMetric = "compute_unit_seconds"

// checkEnforcement checks, for every project of the billed orgs still in Neon, that Neon holds
// it suspended exactly when its plan at at has a hard limit its usage of at's period reaches,
// and that enforcement_state records it over a limit exactly when its usage reaches a hard or
// soft one. The usage is what ClickHouse holds, which checkUsage compares with the truth.
func (w *world) checkEnforcement(ctx context.Context, cat *plans.Catalog, at time.Time) (check, error) {
	c := check{name: "enforcement: Neon and enforcement_state = what plan and usage require"}
	used, err := w.periodUsage(ctx, plans.PeriodStart(at))
	if err != nil {
		return c, err
	}
	states, err := enforcementstore.New(w.conn, w.o.Database).States(ctx)
	if err != nil {
		return c, err
	}
	suspended, over := 0, 0
	for _, org := range w.orgs {
		if org.Legacy {
			continue
		}
		for _, p := range org.ProjectIDs {
			if _, gone := w.deleted[p]; gone {
				continue
			}
			plan := w.planAt(p, at)
			pl, ok := cat.Plan(plan)
			if !ok {
				return c, fmt.Errorf("plan %s of %s is not in the catalog", plan, p)
			}
			lim, limited := pl.Limits[enforcedMetric]
			isOver := limited && lim.Max > 0 && used[p] >= lim.Max
			wantSuspended := isOver && lim.Kind == plans.KindHard
			st, _ := w.sim.Project(p)
			gotSuspended := st.Quota.ActiveTimeSeconds == enforcement.ActiveTimeSuspendQuota
			c.compared++
			if wantSuspended != gotSuspended {
				c.fail("%s (plan %s, %d of %d CU-s): suspended in Neon %v, want %v", p, plan, used[p], lim.Max, gotSuspended, wantSuspended)
			}
			s, ok := states[p]
			recorded := ok && s.PeriodStart.Equal(plans.PeriodStart(at)) && s.Level == enforcement.LevelOver
			if recorded != isOver {
				c.fail("%s (plan %s, %d of %d CU-s): enforcement_state over %v, want %v", p, plan, used[p], lim.Max, recorded, isOver)
			}
			if gotSuspended {
				suspended++
			}
			if isOver {
				over++
			}
		}
	}
	c.detail = fmt.Sprintf("at %s: %d projects over a limit, %d suspended in Neon", at.Format(time.RFC3339), over, suspended)
	w.overLimit = over
	return c, nil
}

// planAt is the plan project p is on at t: its owner's, or the default (free) when nobody owns it.
func (w *world) planAt(p string, t time.Time) string {
	plan := "free"
	for _, o := range w.owners[p] {
		if !o.from.After(t) {
			plan = o.plan
		}
	}
	return plan
}

// periodUsage sums each project's stored compute since from.
func (w *world) periodUsage(ctx context.Context, from time.Time) (map[string]uint64, error) {
	out := map[string]uint64{}
	q := schema.Query{Name: "soak.period_usage", Kind: schema.KindSelect, Args: []any{enforcedMetric, schema.UTC(from)}, SQL: `
SELECT project_id, sum(value)
FROM {db}.usage_facts FINAL
WHERE metric = ? AND hour >= ?
GROUP BY project_id`}
	err := q.Each(ctx, w.conn, w.o.Database, func(r schema.Row) error {
		var p string
		var v uint64
		if err := r.Scan(&p, &v); err != nil {
			return err
		}
		out[p] = v
		return nil
	})
	return out, err
}
