package enforcement

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
)

// A cycle runs the steps README.md names, in order: load (load.go), evaluate, breaker and read
// (here), plan (PlanVerdict, plan.go), apply (apply.go) and record (record.go). cycleState
// carries what flows from one step to the next.
type cycleState struct {
	now  time.Time
	opts CycleOptions
	pol  Policy
	mode Mode
	rep  *Report
	ev   *Evaluated
	// projects are the cycle's projects (the fleet, or opts.Only), in id order.
	projects []*project
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
		Kind: v.Worst.Kind, Usage: v.Worst.Usage, Limit: v.Worst.Limit, Held: v.Held, Crossed: v.Crossed}
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

// breaker is step 3: it counts the projects the limits would newly suspend or throttle; beyond
// the cap they keep their current status this cycle (and are reconsidered next cycle).
func breaker(c *cycleState) {
	capN := c.pol.MaxActions
	if byPct := int(math.Ceil(c.pol.MaxPercent / 100 * float64(c.rep.Fleet))); byPct < capN {
		capN = byPct
	}
	c.rep.BreakerCap = capN
	for _, p := range c.projects {
		if !p.v.Enforces {
			continue
		}
		c.rep.Enforcing++
		if c.rep.Enforcing > capN {
			c.rep.BreakerTripped = true
			p.v = hold(p.d, p.v, c.pol, HeldBreaker)
		}
	}
}

// hold keeps a project at its current status for reason.
func hold(d Desired, v Verdict, pol Policy, reason HoldReason) Verdict {
	samePeriod := d.Last.Known && d.Last.PeriodStart.Equal(d.PeriodStart)
	v.Target = target(d, heldStatus(samePeriod, statusOf(d.Last.Applied)), pol.NeverSuspend[d.ProjectID])
	v.Held, v.Enforces = reason, false
	return v
}

// chooseReads is the first half of step 4: Neon is read only where the target moved, the state
// is unknown or endpoints wait (most urgent first); then a few of the rest, least recently read
// first, to catch settings changed by hand; at most Policy.MaxReads in all. A cycle narrowed to
// some projects reads them all.
func chooseReads(c *cycleState) {
	var mustRead, drift []*project
	for _, p := range c.projects {
		last := p.d.Last
		if p.v.Plan == "" {
			continue
		}
		if last.Applied == "" || last.Applied != p.v.Target.Fingerprint() || last.EndpointsPending {
			mustRead = append(mustRead, p)
		} else {
			drift = append(drift, p)
		}
	}
	sort.SliceStable(mustRead, func(i, j int) bool { return mustRead[i].v.Enforces && !mustRead[j].v.Enforces })
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
	if err != nil {
		c.fail(p, err, err)
		return
	}
	acts, pending := PlanVerdict(p.v, o, c.pol)
	p.row.Actions, p.row.EndpointsPending = acts, pending
	r.apply(ctx, c, p, acts, pending)
}

// finish publishes the cycle's gauges and summary line; its error lists the projects that failed.
func (r *Reconciler) finish(c *cycleState) error {
	rep := c.rep
	r.cfg.Metrics.observeCycle(rep)
	r.log.Info("enforcement cycle", "run_id", rep.CycleID, "mode", c.mode, "fleet", rep.Fleet, "reads", rep.Reads,
		"mutations", rep.Mutations, "failures", rep.Failures, "enforcing", rep.Enforcing, "breaker_tripped", rep.BreakerTripped)
	if len(c.failures) > 0 {
		return fmt.Errorf("enforcement cycle %s: %d project(s) failed: %w", rep.CycleID, len(c.failures), errors.Join(c.failures...))
	}
	return nil
}
