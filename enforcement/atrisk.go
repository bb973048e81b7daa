package enforcement

import (
	"context"
	"fmt"
	"sort"

	"github.com/neonmeter/neonmeter/plans"
)

// The at-risk set tells the collector which projects to keep freshest: those near or over a hard
// limit, or suspended (enforcement_at_risk). Each full cycle that records publishes its changes
// only, so a steady fleet writes nothing; the collector reads the set as of the last cycle.

// publishes reports whether the cycle publishes the at-risk set: a full cycle that records
// (serve's cycles in either mode, enforce without --dry-run).
func (c *cycleState) publishes() bool { return c.opts.Only == nil && !c.opts.DryRun }

// atRiskOf says whether a project is at risk, and why: on a plan with a hard limit, a hard limit
// at warning or over (the first such, over before warning), or suspended. Gone, released and
// unknown-plan projects are not: nothing fresher data would change is done to them.
func atRiskOf(p *project) (bool, string) {
	v := p.v
	if v.Plan == "" || p.next.Gone || v.Target.Status == StatusReleased || !hasHardLimit(p.d.Plan) {
		return false, ""
	}
	reason := ""
	for _, f := range v.Findings {
		if f.Kind != plans.KindHard || f.Level == LevelOK {
			continue
		}
		if f.Level == LevelOver {
			return true, string(LevelOver) + " " + f.Metric
		}
		if reason == "" {
			reason = string(f.Level) + " " + f.Metric
		}
	}
	if reason == "" && v.Target.Status == StatusSuspended {
		reason = string(StatusSuspended)
	}
	return reason != "", reason
}

func hasHardLimit(p *plans.Plan) bool {
	for _, l := range p.Limits {
		if l.Kind == plans.KindHard && !l.Unlimited && l.Max > 0 {
			return true
		}
	}
	return false
}

// atRiskChanges compares the cycle's at-risk projects with the set last published: a row for
// each project that entered (at_risk 1; again when its org changed, which the collector reads
// it by) or left (0), projects no longer in the fleet included.
func (c *cycleState) atRiskChanges() []AtRiskRow {
	var out []AtRiskRow
	now := make(map[string]bool, len(c.atRisk))
	for _, p := range c.projects {
		in, reason := atRiskOf(p)
		if !in {
			continue
		}
		now[p.d.ProjectID] = true
		c.rep.AtRisk++
		if was, ok := c.atRisk[p.d.ProjectID]; !ok || p.d.OrgID != "" && was.OrgID != p.d.OrgID {
			out = append(out, AtRiskRow{ProjectID: p.d.ProjectID, OrgID: p.d.OrgID, AtRisk: true, Reason: reason,
				UpdatedAt: c.now, RunID: c.rep.CycleID})
		}
	}
	left := make([]string, 0)
	for id := range c.atRisk {
		if !now[id] {
			left = append(left, id)
		}
	}
	sort.Strings(left)
	for _, id := range left {
		out = append(out, AtRiskRow{ProjectID: id, OrgID: c.atRisk[id].OrgID, UpdatedAt: c.now, RunID: c.rep.CycleID})
	}
	return out
}

// publishAtRisk writes the changes of the at-risk set (a full recording cycle), after the
// states: a crash before it leaves the set as it was, and the next cycle publishes the difference.
func (r *Reconciler) publishAtRisk(ctx context.Context, c *cycleState) error {
	if c.opts.Only != nil {
		return nil
	}
	rows := c.atRiskChanges() // counts the set in a dry run too
	if !c.publishes() {
		return nil
	}
	for _, row := range rows {
		if row.AtRisk {
			c.rep.AtRiskEntered++
		} else {
			c.rep.AtRiskLeft++
		}
	}
	if err := r.cfg.Store.WriteAtRisk(ctx, rows); err != nil {
		return fmt.Errorf("enforcement cycle %s: at-risk set: %w", c.rep.CycleID, err)
	}
	return nil
}
