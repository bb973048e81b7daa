package enforcement

import (
	"context"
	"fmt"
	"time"
)

// AuditDecision is the action of an audit row that records a level change or a release rather
// than a Neon mutation.
const AuditDecision = "decision"

// Outcome is what became of a project's actions, an action or a decision in a cycle. The values
// are stored in audit rows; applied, planned and failed are also the actions metric's outcome
// label.
type Outcome string

// Outcomes.
const (
	OutcomeApplied  Outcome = "applied"  // sent to Neon, its operations finished
	OutcomePlanned  Outcome = "planned"  // dry run: not sent
	OutcomeDeferred Outcome = "deferred" // the circuit breaker held the project back
	OutcomeFailed   Outcome = "failed"   // Neon refused or could not be read
	OutcomeRecorded Outcome = "recorded" // a decision, audited
	OutcomeGone     Outcome = "gone"     // Neon answered 404: the project was deleted; skipped from then on
)

// auditEntry is what one audit row says beyond the cycle and the project it belongs to.
type auditEntry struct {
	Action        string // an ActionKind, or AuditDecision
	Reason        string
	Before, After string
	OperationIDs  []string
	Outcome       Outcome
	Error         string
}

// actionEntry is the audit entry of an action; an endpoint action names its endpoint, or a
// project's computes could not be told apart in the audit.
func actionEntry(a Action, ops []string, outcome Outcome, err error) auditEntry {
	e := auditEntry{Action: string(a.Kind), Reason: string(a.Reason), Before: a.Before, After: a.After, OperationIDs: ops, Outcome: outcome}
	if a.EndpointID != "" {
		e.Before, e.After = "endpoint="+a.EndpointID+" "+a.Before, "endpoint="+a.EndpointID+" "+a.After
	}
	if err != nil {
		e.Error = err.Error()
	}
	return e
}

// decisionEntry is the audit entry of a level change: the status decided, and what held it back.
func decisionEntry(v Verdict) auditEntry {
	reason := string(v.Target.Status)
	if v.Held != "" {
		reason += " (held: " + string(v.Held) + ")"
	}
	return auditEntry{Action: AuditDecision, Reason: reason, Outcome: OutcomeRecorded}
}

// auditRow is e as a row of the cycle, for project p at its worst finding.
func (c *cycleState) auditRow(p *project, e auditEntry) AuditRecord {
	w := p.v.Worst
	return AuditRecord{At: c.rep.At, CycleID: c.rep.CycleID, ProjectID: p.d.ProjectID, Plan: p.v.Plan, Metric: w.Metric,
		Usage: w.Usage, Limit: w.Limit, Level: p.v.Level, Action: e.Action, Reason: e.Reason, Mode: c.mode,
		Before: e.Before, After: e.After, OperationIDs: e.OperationIDs, Outcome: e.Outcome, Error: e.Error}
}

// record is step 8 for one project: its audit rows (a crossing is audited as one decision row
// and counted once) and its memory, and its line of the report. A project Neon mutations were
// sent for is written at once, so a crash loses at most the project in flight (whose re-run
// finds Neon already as wanted); the rest wait for flush. An explicit dry run records nothing:
// remembering its levels would use up the crossings that the serving process must record and
// alert on.
func (r *Reconciler) record(ctx context.Context, c *cycleState, p *project) error {
	audit := p.actionAudit
	if p.v.Crossed {
		audit = append([]AuditRecord{c.auditRow(p, decisionEntry(p.v))}, audit...)
		r.cfg.Metrics.countCrossing(p.v.Level)
	}
	changed := !p.d.Last.Known || p.next != p.d.Last
	switch {
	case c.opts.DryRun:
	case changed && len(audit) > 0 && p.sent:
		st := stateOf(p.d.ProjectID, p.next, c.now)
		if err := r.cfg.Store.InsertAudit(ctx, audit); err != nil {
			return fmt.Errorf("enforcement cycle %s: %w", c.rep.CycleID, err)
		}
		if err := r.cfg.Store.WriteStates(ctx, []State{st}); err != nil {
			return fmt.Errorf("enforcement cycle %s: %w", c.rep.CycleID, err)
		}
	case changed:
		c.pendingAudit = append(c.pendingAudit, audit...)
		c.pendingStates = append(c.pendingStates, stateOf(p.d.ProjectID, p.next, c.now))
	default:
		c.pendingAudit = append(c.pendingAudit, audit...)
	}
	if p.next.Gone {
		c.rep.Gone++
	}
	c.rep.IdleOverMax += p.row.IdleOverMax
	if row := p.row; len(row.Actions) > 0 || row.Crossed || row.Held != "" || row.Level != LevelOK || row.Status != StatusNormal ||
		row.Error != "" || row.Outcome == OutcomeGone || row.EndpointsPending || row.IdleOverMax > 0 {
		c.rep.Rows = append(c.rep.Rows, row)
	}
	return nil
}

// stateBatch bounds the rows of one state or audit insert.
const stateBatch = 10000

// flush ends step 8: the audit rows and states that waited, in batches, then the changes of the
// at-risk set (publishAtRisk).
func (r *Reconciler) flush(ctx context.Context, c *cycleState) error {
	audit := c.pendingAudit
	for start := 0; start < len(audit); start += stateBatch {
		if err := r.cfg.Store.InsertAudit(ctx, audit[start:min(start+stateBatch, len(audit))]); err != nil {
			return fmt.Errorf("enforcement cycle %s: %w", c.rep.CycleID, err)
		}
	}
	states := c.pendingStates
	for start := 0; start < len(states); start += stateBatch {
		if err := r.cfg.Store.WriteStates(ctx, states[start:min(start+stateBatch, len(states))]); err != nil {
			return fmt.Errorf("enforcement cycle %s: %w", c.rep.CycleID, err)
		}
	}
	return r.publishAtRisk(ctx, c)
}

// memoryOf is a stored state as the memory Evaluate reads.
func memoryOf(s State) Memory {
	m := Memory{Known: true, PeriodStart: s.PeriodStart, Plan: s.Plan, Level: s.Level, OverSince: s.OverSince, Seen: s.Seen}
	m.Released = !s.ReleasedPeriod.IsZero() && s.ReleasedPeriod.Equal(s.PeriodStart)
	if m.Level == "" {
		m.Level = LevelOK
	}
	return m
}

// stateOf is a project's memory as the state row to store; the version orders rows by time.
func stateOf(id string, m Memory, now time.Time) State {
	s := State{ProjectID: id, PeriodStart: m.PeriodStart, Plan: m.Plan, Level: m.Level, OverSince: m.OverSince, Seen: m.Seen,
		UpdatedAt: now, Version: uint64(now.UnixNano())}
	if m.Released {
		s.ReleasedPeriod = m.PeriodStart
	}
	return s
}
