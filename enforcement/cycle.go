package enforcement

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
)

// A cycle runs the steps README.md names, in order: load (load.go), observe (survey,
// observe.go), evaluate (here), breaker (breaker.go), read (choose, choose.go; readProject),
// plan (PlanVerdict, plan.go), apply (apply.go) and record (record.go, atrisk.go). cycleState
// carries what flows from one step to the next.
type cycleState struct {
	now  time.Time
	opts CycleOptions
	pol  Policy
	mode Mode
	rep  *Report
	ev   *Evaluated
	// latch is the breaker's newest trip or acknowledgement, as loaded.
	latch BreakerEvent
	// atRisk is the at-risk set as last published (full recording cycles only).
	atRisk map[string]AtRiskRow
	// projects are the cycle's projects (the fleet, or opts.Only), in id order.
	projects []*project
	// entries are what the project lists (or GETs) showed, by project id; readErr the GETs of a
	// narrowed cycle that failed; orgPages the list calls per org.
	entries  map[string]listEntry
	readErr  map[string]error
	orgPages map[string]int
	// chosen get calls of their own this cycle; settled are decided from the list alone.
	chosen, settled map[*project]bool
	failures        []error
	// pendingStates and pendingAudit wait for the batch written at the end of the cycle.
	pendingStates []State
	pendingAudit  []AuditRecord
}

// project is one project's working state in a cycle.
type project struct {
	d Desired
	v Verdict
	// row is the project's line of the report.
	row Row
	// next is the memory to persist: the verdict's, plus what apply learnt of Neon.
	next Memory
	// actionAudit are the audit rows of the project's actions, in order.
	actionAudit []AuditRecord
	// computes says its computes are read this cycle; urgency (then lastActive, as listed)
	// orders it for the budget; sent says a mutation was sent (its rows are then written at
	// once); partial says its settings are planned from the list while its computes wait beyond
	// the budget (its memory does not move on).
	computes, sent, partial bool
	urgency                 int
	lastActive              time.Time
}

// begin starts the project's report line and memory from its final verdict (after the breaker).
func (p *project) begin() {
	v := p.v
	p.row = Row{ProjectID: p.d.ProjectID, Plan: v.Plan, Level: v.Level, Status: v.Target.Status, Metric: v.Worst.Metric,
		Kind: v.Worst.Kind, Usage: v.Worst.Usage, Limit: v.Worst.Limit, Held: v.Held, Crossed: v.Crossed,
		EndpointsPending: v.Next.EndpointsPending, IdleOverMax: v.Next.IdleOverMax}
	if v.Next.Gone {
		p.row.Outcome = OutcomeGone
	}
	p.next = v.Next
}

// fail notes a project that failed: its row says why (err) and the cycle's error lists it (as
// listed). The cycle goes on with the next project.
func (c *cycleState) fail(p *project, err, listed error) {
	c.failures = append(c.failures, listed)
	p.row.Outcome, p.row.Error = OutcomeFailed, err.Error()
	c.rep.Failures++
}

// cycle is one cycle, step by step; steps 5 to 8 run project by project, so that a project acted
// on is recorded before the next one is read.
func (r *Reconciler) cycle(ctx context.Context, opts CycleOptions) (*Report, error) {
	c := r.newCycle(opts)
	if err := r.load(ctx, c); err != nil {
		return c.rep, err
	}
	r.survey(ctx, c)
	evaluate(c)
	breaker(c)
	if err := r.latchBreaker(ctx, c); err != nil {
		return c.rep, err
	}
	choose(c)
	for _, p := range c.projects {
		p.begin()
		switch {
		case c.chosen[p]:
			r.readProject(ctx, c, p)
		case c.settled[p]:
			r.planApply(ctx, c, p, c.entries[p.d.ProjectID].observed())
		}
		if p.row.Held == HeldBreaker {
			p.row.Outcome = OutcomeDeferred
		}
		if err := r.record(ctx, c, p); err != nil {
			return c.rep, err
		}
	}
	if err := r.flush(ctx, c); err != nil {
		return c.rep, err
	}
	return c.rep, r.finish(c)
}

func (r *Reconciler) newCycle(opts CycleOptions) *cycleState {
	now := r.cfg.Now().UTC()
	mode := r.cfg.Policy.Mode
	if opts.DryRun {
		mode = ModeDryRun
	}
	rep := &Report{CycleID: runid.New("enforce", now), At: now, Mode: mode}
	return &cycleState{now: now, opts: opts, pol: r.cfg.Policy, mode: mode, rep: rep}
}

// load is step 1: everything the cycle knows without asking Neon, the fleet's counts and the
// cycle's projects.
func (r *Reconciler) load(ctx context.Context, c *cycleState) error {
	ev, err := r.Load(ctx, c.now)
	if err != nil {
		return err
	}
	c.ev = ev
	if c.latch, err = r.cfg.Store.LastBreakerEvent(ctx); err != nil {
		return fmt.Errorf("enforcement load: breaker: %w", err)
	}
	if c.publishes() {
		if c.atRisk, err = r.cfg.Store.AtRiskSet(ctx); err != nil {
			return fmt.Errorf("enforcement load: at-risk set: %w", err)
		}
	}
	c.rep.Fleet = len(ev.Projects)
	c.rep.FleetByPlan = map[string]int{}
	for _, d := range ev.Projects {
		name := ""
		if d.Plan != nil {
			name = d.Plan.Name
		}
		c.rep.FleetByPlan[name]++
	}
	only := map[string]bool{}
	for _, id := range c.opts.Only {
		only[id] = true
	}
	ids := make([]string, 0, len(ev.Projects))
	for id := range ev.Projects {
		if c.opts.Only == nil || only[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	c.projects = make([]*project, 0, len(ids))
	for _, id := range ids {
		c.projects = append(c.projects, &project{d: *ev.Projects[id]})
	}
	return nil
}

// evaluate is step 3: every project of the cycle judged against its plan (Evaluate), with the
// freshness the survey judged.
func evaluate(c *cycleState) {
	for _, p := range c.projects {
		p.v = Evaluate(p.d, c.pol, c.now)
	}
}

// finish publishes the cycle's gauges and summary line; its error lists the projects and the
// project lists that failed.
func (r *Reconciler) finish(c *cycleState) error {
	rep := c.rep
	r.cfg.Metrics.observeCycle(rep)
	r.log.Info("enforcement cycle", "run_id", rep.CycleID, "mode", c.mode, "fleet", rep.Fleet, "reads", rep.Reads,
		"list_calls", rep.ListCalls, "get_calls", rep.GetCalls, "endpoint_calls", rep.EndpointCalls, "mutations", rep.Mutations,
		"rechecked", rep.Rechecked, "recheck_calls", rep.RecheckCalls, "failures", rep.Failures, "gone", rep.Gone,
		"at_risk", rep.AtRisk, "enforcing", rep.Enforcing, "breaker_tripped", rep.BreakerTripped, "breaker_latched", rep.BreakerLatched)
	if len(c.failures) > 0 {
		return fmt.Errorf("enforcement cycle %s: %d failure(s): %w", rep.CycleID, len(c.failures), errors.Join(c.failures...))
	}
	return nil
}
