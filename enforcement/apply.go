package enforcement

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/neonmeter/neonmeter/neon"
)

// Neon is the part of the Neon client enforcement uses. The client retries 423 (a project with
// running operations) and 503 itself, and never retries a mutation after a network error.
type Neon interface {
	// ListProjects pages through an org's projects: a cycle's observation (survey, observe.go).
	ListProjects(ctx context.Context, q neon.ListProjectsQuery) iter.Seq2[*neon.ProjectsPage, error]
	GetProject(ctx context.Context, projectID string) (*neon.Project, error)
	ListEndpoints(ctx context.Context, projectID string) ([]neon.Endpoint, error)
	UpdateProject(ctx context.Context, projectID string, u neon.ProjectUpdate) (*neon.Project, []neon.Operation, error)
	SuspendEndpoint(ctx context.Context, projectID, endpointID string) (*neon.Endpoint, []neon.Operation, error)
	UpdateEndpoint(ctx context.Context, projectID, endpointID string, u neon.EndpointUpdate) (*neon.Endpoint, []neon.Operation, error)
	WaitOperations(ctx context.Context, projectID string, ops []neon.Operation) error
}

var _ Neon = (*neon.Client)(nil)

// applyAction sends one action and waits for the operations Neon started, so the next mutation
// of the project does not meet 423. It returns the operation ids.
func applyAction(ctx context.Context, n Neon, a Action) ([]string, error) {
	var (
		ops []neon.Operation
		err error
	)
	switch a.Kind {
	case ActionUpdateProject:
		_, ops, err = n.UpdateProject(ctx, a.ProjectID, neon.ProjectUpdate{Quota: a.Quota, DefaultEndpointSettings: a.Defaults})
	case ActionSuspendEndpoint:
		_, ops, err = n.SuspendEndpoint(ctx, a.ProjectID, a.EndpointID)
	case ActionUpdateEndpoint:
		_, ops, err = n.UpdateEndpoint(ctx, a.ProjectID, a.EndpointID, neon.EndpointUpdate{AutoscalingLimitMinCU: a.MinCU, AutoscalingLimitMaxCU: a.MaxCU})
	default:
		return nil, fmt.Errorf("apply %s project %s: unknown action kind", a.Kind, a.ProjectID)
	}
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.ID
	}
	if err != nil {
		return ids, fmt.Errorf("apply %s project %s: %w", a.Kind, a.ProjectID, err)
	}
	if err := n.WaitOperations(ctx, a.ProjectID, ops); err != nil {
		return ids, fmt.Errorf("apply %s project %s: %w", a.Kind, a.ProjectID, err)
	}
	return ids, nil
}

// apply is step 7: it sends a project's actions in order (in dry-run mode it only records them as
// planned), stopping at the first failure: later actions assume the earlier ones happened. Once
// Neon matches the target, the memory says so (and, when its computes were read, when), and the
// next cycle need not look closer than the list.
func (r *Reconciler) apply(ctx context.Context, c *cycleState, p *project, acts []Action, pending, computesRead bool) {
	if len(acts) > 0 {
		if c.mode != ModeEnforce {
			r.plannedOnly(c, p, acts)
			return
		}
		if err := r.send(ctx, c, p, acts); errors.Is(err, errGone) {
			c.gone(p, err)
			return
		} else if err != nil {
			c.fail(p, err, fmt.Errorf("project %s: %w", p.d.ProjectID, err))
			return
		}
	}
	if p.partial {
		return
	}
	p.next.Applied, p.next.EndpointsPending = p.v.Target.Fingerprint(), pending
	if computesRead {
		p.next.ObservedAt = c.now
	}
}

// plannedOnly records a dry run's actions: audited and counted as planned, nothing sent.
func (r *Reconciler) plannedOnly(c *cycleState, p *project, acts []Action) {
	for _, a := range acts {
		p.actionAudit = append(p.actionAudit, c.auditRow(p, actionEntry(a, nil, OutcomePlanned, nil)))
		r.cfg.Metrics.countAction(a.Kind, OutcomePlanned)
	}
	p.row.Outcome = OutcomePlanned
}

// errGone marks a failure because Neon no longer has the project (404).
var errGone = errors.New("the project is gone from Neon")

// send applies acts to Neon, auditing and counting each; it returns the first failure (errGone
// when Neon no longer has the project). Each endpoint changed updates the project's prior ranges.
func (r *Reconciler) send(ctx context.Context, c *cycleState, p *project, acts []Action) error {
	p.sent = true
	for _, a := range acts {
		if a.WakeRisk {
			r.cfg.Metrics.countWakeRisk()
			r.log.Warn("endpoint patch wakes an idle compute", "run_id", c.rep.CycleID, "project_id", a.ProjectID, "endpoint", a.EndpointID, "reason", a.Reason)
		}
		ops, err := applyAction(ctx, r.cfg.Neon, a)
		c.rep.Mutations++
		r.cfg.Metrics.countCall(string(a.Kind))
		if err != nil {
			// Not logged here: the audit row, the report and the cycle's error carry it.
			outcome := OutcomeFailed
			if r.isGone(ctx, c, a, err) {
				outcome, err = OutcomeGone, fmt.Errorf("%w: %w", errGone, err)
			}
			p.actionAudit = append(p.actionAudit, c.auditRow(p, actionEntry(a, ops, outcome, err)))
			r.cfg.Metrics.countAction(a.Kind, outcome)
			return err
		}
		p.next.Prior = parsePrior(p.next.Prior).noteAction(a).String()
		p.actionAudit = append(p.actionAudit, c.auditRow(p, actionEntry(a, ops, OutcomeApplied, nil)))
		r.cfg.Metrics.countAction(a.Kind, OutcomeApplied)
		r.log.Info("enforcement action", "run_id", c.rep.CycleID, "project_id", a.ProjectID, "action", a.Kind, "reason", a.Reason, "endpoint", a.EndpointID, "after", a.After)
	}
	p.row.Outcome = OutcomeApplied
	return nil
}

// isGone reports whether an action failed because Neon no longer has the project: a 404 on the
// project itself, or on one of its computes when the project answers 404 too (a compute deleted
// alone is not the project gone).
func (r *Reconciler) isGone(ctx context.Context, c *cycleState, a Action, err error) bool {
	if !errors.Is(err, neon.ErrNotFound) {
		return false
	}
	if a.Kind == ActionUpdateProject {
		return true
	}
	_, gerr := r.getProject(ctx, c, a.ProjectID)
	return errors.Is(gerr, neon.ErrNotFound)
}

// gone records a project Neon answered 404 for (deleted, but still mapped): it is remembered as
// gone and audited once, never fails the cycle, and later cycles skip it until a project list
// shows it again.
func (c *cycleState) gone(p *project, err error) {
	p.next.Gone, p.next.ObservedAt = true, c.now
	p.row.Outcome, p.row.Error = OutcomeGone, err.Error()
	if !p.d.Last.Gone {
		p.actionAudit = append(p.actionAudit, c.auditRow(p, auditEntry{Action: AuditDecision, Reason: "gone from Neon",
			Outcome: OutcomeGone, Error: err.Error()}))
	}
}
