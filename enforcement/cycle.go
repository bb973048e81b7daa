package enforcement

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/neon"
)

// A cycle runs the steps README.md names, in order: load (load.go), evaluate (here), breaker
// (breaker.go), read (recheck.go, then here), plan (PlanVerdict, plan.go), apply (apply.go) and
// record (record.go). cycleState carries what flows from one step to the next.
type cycleState struct {
	now  time.Time
	opts CycleOptions
	pol  Policy
	mode Mode
	rep  *Report
	ev   *Evaluated
	// latch is the breaker's newest trip or acknowledgement, as loaded.
	latch BreakerEvent
	// projects are the cycle's projects (the fleet, or opts.Only), in id order.
	projects []*project
	// stale are the re-checked projects whose list entry calls for a full read (recheck.go).
	stale map[*project]bool
	// toRead are the projects whose Neon state this cycle reads.
	toRead   map[*project]bool
	failures []error
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

// cycle is one cycle, step by step; steps 4 to 7 run project by project, so that a project acted
// on is recorded before the next one is read.
func (r *Reconciler) cycle(ctx context.Context, opts CycleOptions) (*Report, error) {
	c := r.newCycle(opts)
	if err := r.load(ctx, c); err != nil {
		return c.rep, err
	}
	evaluate(c)
	breaker(c)
	if err := r.latchBreaker(ctx, c); err != nil {
		return c.rep, err
	}
	r.recheck(ctx, c)
	chooseReads(c)
	for _, p := range c.projects {
		p.begin()
		if c.toRead[p] {
			r.readPlanApply(ctx, c, p)
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

// load is step 1: everything the cycle knows without asking Neon, and the fleet's counts.
func (r *Reconciler) load(ctx context.Context, c *cycleState) error {
	ev, err := r.Load(ctx, c.now)
	if err != nil {
		return err
	}
	c.ev = ev
	if c.latch, err = r.cfg.Store.LastBreakerEvent(ctx); err != nil {
		return fmt.Errorf("enforcement load: breaker: %w", err)
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
	return nil
}

// evaluate is step 2: every project of the cycle judged against its plan (Evaluate).
func evaluate(c *cycleState) {
	only := map[string]bool{}
	for _, id := range c.opts.Only {
		only[id] = true
	}
	ids := make([]string, 0, len(c.ev.Projects))
	for id := range c.ev.Projects {
		if c.opts.Only == nil || only[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	c.projects = make([]*project, 0, len(ids))
	for _, id := range ids {
		d := *c.ev.Projects[id]
		c.projects = append(c.projects, &project{d: d, v: Evaluate(d, c.pol, c.now)})
	}
}

// chooseReads ends the first part of step 4: Neon is read where the target moved or the state
// is unknown, and where the re-check found a compute that ran or settings that moved (stale);
// most urgent first. Then a few of the rest, least recently read first, to catch settings
// changed by hand, and gone projects in case Neon has them again; at most Policy.MaxReads in all.
// A cycle narrowed to some projects reads them all.
func chooseReads(c *cycleState) {
	var mustRead, drift []*project
	for _, p := range c.projects {
		last := p.d.Last
		switch {
		case p.v.Plan == "":
		case last.Gone:
			drift = append(drift, p)
		case last.Applied == "" || last.Applied != p.v.Target.Fingerprint() || c.stale[p]:
			mustRead = append(mustRead, p)
		default:
			drift = append(drift, p)
		}
	}
	urgency := func(p *project) int {
		switch {
		case p.v.Enforces:
			return 0
		case c.stale[p]:
			return 1
		}
		return 2
	}
	sort.SliceStable(mustRead, func(i, j int) bool { return urgency(mustRead[i]) < urgency(mustRead[j]) })
	sort.SliceStable(drift, func(i, j int) bool { return drift[i].d.Last.ObservedAt.Before(drift[j].d.Last.ObservedAt) })
	budget := c.pol.MaxReads
	toRead := mustRead[:min(len(mustRead), budget)]
	if rest := budget - len(toRead); rest > 0 && c.opts.Only == nil {
		toRead = append(toRead, drift[:min(len(drift), rest, c.pol.DriftReads)]...)
	} else if c.opts.Only != nil {
		toRead = append(toRead, drift...)
	}
	c.toRead = make(map[*project]bool, len(toRead))
	for _, p := range toRead {
		c.toRead[p] = true
	}
}

// readPlanApply runs steps 4 to 6 for one project chosen for reading: read its Neon state,
// plan the minimal diff to the target (PlanVerdict), apply it.
func (r *Reconciler) readPlanApply(ctx context.Context, c *cycleState, p *project) {
	p.row.Read = true
	c.rep.Reads++
	r.cfg.Metrics.countRead()
	o, err := observe(ctx, r.cfg.Neon, p.d.ProjectID)
	if errors.Is(err, neon.ErrNotFound) {
		c.gone(p, err)
		return
	}
	if err != nil {
		c.fail(p, err, err)
		return
	}
	p.v = notePrior(p.d, p.v, o, c.pol)
	p.next.Gone, p.next.Prior = false, p.v.Next.Prior
	acts, pending := PlanVerdict(p.v, o, c.pol)
	p.next.IdleOverMax = IdleOverMax(p.v, o)
	p.row.Actions, p.row.EndpointsPending, p.row.IdleOverMax, p.row.Outcome = acts, pending, p.next.IdleOverMax, ""
	r.apply(ctx, c, p, acts, pending)
}

// finish publishes the cycle's gauges and summary line; its error lists the projects that failed.
func (r *Reconciler) finish(c *cycleState) error {
	rep := c.rep
	r.cfg.Metrics.observeCycle(rep)
	r.log.Info("enforcement cycle", "run_id", rep.CycleID, "mode", c.mode, "fleet", rep.Fleet, "reads", rep.Reads,
		"rechecked", rep.Rechecked, "recheck_calls", rep.RecheckCalls, "mutations", rep.Mutations, "failures", rep.Failures,
		"gone", rep.Gone, "enforcing", rep.Enforcing, "breaker_tripped", rep.BreakerTripped, "breaker_latched", rep.BreakerLatched)
	if len(c.failures) > 0 {
		return fmt.Errorf("enforcement cycle %s: %d project(s) failed: %w", rep.CycleID, len(c.failures), errors.Join(c.failures...))
	}
	return nil
}
