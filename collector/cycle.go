package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/neon"
)

// runKindCycle names the runs of budgeted cycles.
const runKindCycle = "cycle"

// CycleSummary reports one budgeted cycle.
type CycleSummary struct {
	Started  time.Time
	Duration time.Duration
	// Budget is the calls the cycle could spend; Calls the HTTP attempts it sent on the
	// consumption routes, retries included (never above Budget).
	Budget, Calls int
	// Batches planned, and Collected: those whose facts and progress were written.
	Batches, Collected int
	// Projects listed, every org; Absent: projects a call named that Neon's answer left out
	// (not advanced, tried again later).
	Projects, Absent int
	// PastHorizon counts projects whose progress was older than Neon's 168 hours of hourly
	// data: the hours between are lost at hourly grain (backfill them at daily grain).
	PastHorizon                           int
	ValuesFetched, RowsWritten, Revisions int64
	// StoreWrite is the time spent inserting facts, revisions and progress.
	StoreWrite time.Duration
	// Orgs are the org's runs, as collection_runs records them.
	Orgs []Summary
	// Tiers is the freshness of every org's tiers after the cycle.
	Tiers []TierFreshness
}

// TierFreshness is how fresh one tier of an org is: the age of its newest complete hour, the
// hour before which every project of the tier is collected.
type TierFreshness struct {
	OrgID    string
	Tier     Tier
	Projects int // in the tier
	Planned  int // placed in a call by the cycle (0 when read from the store)
	// Oldest is the earliest complete-through among the tier's projects; zero when it is empty.
	Oldest time.Time
	Age    time.Duration // now − Oldest; 0 when empty
}

// cycle is one budgeted cycle in progress.
type cycle struct {
	f         *Fleet
	now, last time.Time
	wallStart time.Time
	st        *fleetState
	orgs      []*orgCycle
	plan      CyclePlan
	budget    *neon.AttemptBudget
	version   uint64
	sum       CycleSummary
	// slowestCall and slowestWrite (nanoseconds; the fetching goroutine reads them) size the
	// margin a cycle keeps before its deadline.
	slowestCall, slowestWrite atomic.Int64
}

// orgCycle is one org's part of a cycle: its run and what happened to its calls.
type orgCycle struct {
	org    FleetOrg
	idx    int
	log    *slog.Logger
	run    Run
	sum    Summary
	last   Run  // its last successful run; zero when none
	listed bool // listed and checked: its projects are planned
	wm     time.Time
	hasWM  bool
	err    error // its first failure
}

// fail records an error of the org's part; the first one names the run's failure.
func (o *orgCycle) fail(err error) {
	o.run.Errors++
	if o.err == nil {
		o.err = err
	}
	o.log.Warn("collection of part of the org failed; its projects stay where they were", logkey.Err, err)
}

// Cycle runs one budgeted cycle: it lists every org's projects, reads their progress and the
// at-risk set, plans the budget (PlanCycle), fetches each call and writes what changed through
// the same diff as a sweep, then each call's progress, and records one run per org and its
// watermark (the oldest complete-through among its listed projects). A failure is returned,
// not logged; whatever was written stays correct, and progress moves only for projects whose
// facts are written.
func (f *Fleet) Cycle(ctx context.Context) (CycleSummary, error) {
	work, cancel := context.WithTimeoutCause(ctx, realSpan(f.cfg.Deadline, f.cfg.Speed), errDeadline)
	defer cancel()
	c := f.newCycle()
	err := c.prepare(work)
	if err == nil {
		c.planBudget()
		err = c.execute(work)
	}
	err = c.explain(ctx, work, err)
	recCtx, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	err = c.finish(recCtx, err)
	if err == nil {
		f.log.Info("cycle done", "budget", c.sum.Budget, "calls", c.sum.Calls, "batches", c.sum.Batches,
			"collected", c.sum.Collected, "projects", c.sum.Projects, "values", c.sum.ValuesFetched,
			"rows_written", c.sum.RowsWritten, "revisions", c.sum.Revisions, "duration", c.sum.Duration)
	}
	return c.sum, err
}

func (f *Fleet) newCycle() *cycle {
	now := f.cfg.Now()
	c := &cycle{
		f: f, now: now, last: now.UTC().Truncate(time.Hour), wallStart: time.Now(),
		st:     newFleetState(len(f.cfg.Orgs)),
		budget: neon.NewAttemptBudget(f.cfg.CallsPerCycle),
		// A fresh version orders this cycle's facts after every earlier one's.
		version: uint64(time.Now().UnixNano()),
		sum:     CycleSummary{Started: now, Budget: f.cfg.CallsPerCycle},
	}
	for i, o := range f.cfg.Orgs {
		id := runid.New(runKindCycle, now)
		c.orgs = append(c.orgs, &orgCycle{
			org: o, idx: i, log: f.log.With(logkey.OrgID, o.ID, logkey.RunID, id),
			sum: Summary{RunID: id, OrgID: o.ID, Endpoint: o.Endpoint},
			run: Run{RunID: id, OrgID: o.ID, Endpoint: o.Endpoint, Granularity: GranularityHourly,
				WindowFrom: c.last, WindowTo: c.last, StartedAt: now, Outcome: OutcomeRunning,
				Host: f.cfg.Host, PID: uint32(f.cfg.PID), DeadlineAt: now.Add(f.cfg.Deadline)},
		})
	}
	return c
}

// prepare records every org's run start, lists its projects and reads their progress and the
// at-risk set. An org that cannot be listed is left out of the cycle (its run fails); a store
// that cannot be read fails the cycle.
func (c *cycle) prepare(ctx context.Context) error {
	for _, o := range c.orgs {
		if err := c.startOrg(ctx, o); err != nil {
			return err
		}
		n := len(c.st.projects)
		listed, err := c.st.listOrg(ctx, c.f.cfg.Neon, o.idx, o.org.ID)
		if err == nil {
			err = CheckProjects(o.org.ID, listed, o.last, c.f.cfg.MinProjectsRatio, c.f.cfg.AcceptProjectDrop)
		}
		if err != nil {
			c.st.truncate(n)
			if ctx.Err() != nil {
				return err
			}
			o.fail(err)
			continue
		}
		o.listed, o.run.Projects, o.sum.Projects = true, uint64(listed), listed
		c.sum.Projects += listed
	}
	if err := c.st.sortByID(); err != nil {
		return err
	}
	for _, o := range c.orgs {
		if !o.listed {
			continue
		}
		start := c.last.Add(-c.f.cfg.Lookback)
		if o.hasWM {
			start = o.wm
		}
		if err := c.st.readProgress(ctx, c.f.cfg.Store, o.idx, o.org.ID, start); err != nil {
			return fmt.Errorf("read progress of org %s: %w", o.org.ID, err)
		}
		if err := c.st.readAtRisk(ctx, c.f.cfg.Store, o.idx, o.org.ID); err != nil {
			return fmt.Errorf("read the at-risk projects of org %s: %w", o.org.ID, err)
		}
	}
	return nil
}

// startOrg reads the org's watermark and last successful run, records runs a dead process
// left behind, and writes the run's start row.
func (c *cycle) startOrg(ctx context.Context, o *orgCycle) error {
	store, feed := c.f.cfg.Store, Feed{OrgID: o.org.ID, Endpoint: o.org.Endpoint, Granularity: GranularityHourly}
	var err error
	if o.wm, o.hasWM, err = store.Watermark(ctx, feed); err != nil {
		return fmt.Errorf("read the watermark of org %s: %w", o.org.ID, err)
	}
	o.sum.Watermark = o.wm
	if o.last, _, err = store.LastRun(ctx, feed); err != nil {
		return fmt.Errorf("read the last successful run of org %s: %w", o.org.ID, err)
	}
	if n, err := closeAbandonedRuns(ctx, store, o.org.ID, o.org.Endpoint, c.now, o.log); err != nil {
		o.log.Warn("could not record abandoned runs", logkey.Err, err)
	} else {
		c.f.cfg.Metrics.abandoned(o.org.Endpoint, n)
	}
	if err := store.WriteRun(ctx, o.run); err != nil {
		return fmt.Errorf("record the run start of org %s: %w", o.org.ID, err)
	}
	return nil
}

// planBudget plans the cycle over the listed projects.
func (c *cycle) planBudget() {
	in := PlanInput{
		Now: c.now, Budget: c.f.cfg.CallsPerCycle, BatchSize: c.f.cfg.BatchSize, Projects: c.st.projects,
		Provisional: c.f.cfg.Provisional, Lookback: c.f.cfg.Lookback,
	}
	if end, ok := ClosingPeriodEnd(c.now, c.f.cfg.PeriodEnd, c.f.cfg.PeriodGrace); ok {
		in.PeriodEnd = end
	}
	c.plan = PlanCycle(in)
	c.sum.Batches = len(c.plan.Batches)
	for _, b := range c.plan.Batches {
		o := c.orgs[b.Org]
		if b.From.Before(o.run.WindowFrom) {
			o.run.WindowFrom = b.From
		}
	}
}

// explain names why a cycle ended early: its caller stopped it (ErrStopped, not a failure),
// its deadline passed, or err as it is.
func (c *cycle) explain(ctx, work context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: cycle stopped after %d of %d calls (%v); what was written stays, progress moved only for projects written", ErrStopped, c.sum.Collected, c.sum.Batches, context.Cause(ctx))
	case errors.Is(context.Cause(work), errDeadline) || pastDeadline(work):
		return fmt.Errorf("cycle deadline of %s (NEONMETER_COLLECT_DEADLINE) passed after %d of %d calls: %w", c.f.cfg.Deadline, c.sum.Collected, c.sum.Batches, err)
	}
	return err
}
