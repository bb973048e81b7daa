package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
)

// flush inserts the pending changes, revisions first, then facts, then the progress they
// earned: a process killed in between leaves progress behind its facts, never ahead, and the
// next cycle re-reads those hours (writing nothing that is already right).
func (c *cycle) flush(ctx context.Context, pend *pendingWrites) error {
	store := c.f.cfg.Store
	start := time.Now()
	if len(pend.revs) > 0 {
		if err := store.InsertRevisions(ctx, pend.revs); err != nil {
			return fmt.Errorf("insert revisions: %w", err)
		}
	}
	if len(pend.facts) > 0 {
		if err := store.InsertFacts(ctx, pend.facts); err != nil {
			return fmt.Errorf("insert facts: %w", err)
		}
	}
	if err := c.writeProgress(ctx, pend.progress); err != nil {
		return err
	}
	perOrg := map[string]*orgCycle{}
	for _, o := range c.orgs {
		perOrg[o.org.ID] = o
	}
	for _, f := range pend.facts {
		perOrg[f.OrgID].sum.RowsWritten++
	}
	for _, r := range pend.revs {
		perOrg[r.OrgID].sum.Revisions++
	}
	for _, u := range pend.progress {
		p := &c.st.projects[u.project]
		p.CompleteThrough, p.RereadThrough, p.SeenActive = u.through, u.reread, u.active
	}
	c.sum.Collected += pend.batches
	took := time.Since(start)
	c.sum.StoreWrite += took
	setMax(&c.slowestWrite, took)
	*pend = pendingWrites{}
	return nil
}

// writeProgress records the progress updates, per org, only forward: a project's row is
// written when it moves complete-through or the activity seen past what the store holds (an
// overlapping cycle may have written since this one read), and its version is above the stored
// one, so the row that wins is never behind.
func (c *cycle) writeProgress(ctx context.Context, updates []progressUpdate) error {
	byOrg := map[int][]progressUpdate{}
	for _, u := range updates {
		byOrg[u.org] = append(byOrg[u.org], u)
	}
	for oi, us := range byOrg {
		o := c.orgs[oi]
		ids := make([]string, len(us))
		for k, u := range us {
			ids[k] = c.st.idString(u.project)
		}
		stored, err := c.f.cfg.Store.ProgressOf(ctx, o.org.ID, ids)
		if err != nil {
			return fmt.Errorf("read progress of org %s: %w", o.org.ID, err)
		}
		rows := make([]ProjectProgress, 0, len(us))
		for k, u := range us {
			row := ProjectProgress{OrgID: o.org.ID, ProjectID: ids[k], CompleteThrough: fromUnix32(u.through), FinalThrough: fromUnix32(u.final),
				RereadThrough: fromUnix32(u.reread), LastActiveAt: fromUnix32(u.active), Tier: c.plan.Tier[u.project],
				UpdatedAt: c.f.cfg.Now().UTC().Truncate(time.Second), RunID: o.sum.RunID}
			if s, ok := stored[ids[k]]; ok {
				if !row.CompleteThrough.After(s.CompleteThrough) && !row.FinalThrough.After(s.FinalThrough) &&
					!row.RereadThrough.After(s.RereadThrough) && !row.LastActiveAt.After(s.LastActiveAt) {
					continue
				}
				row.CompleteThrough, row.LastActiveAt = laterOf(row.CompleteThrough, s.CompleteThrough), laterOf(row.LastActiveAt, s.LastActiveAt)
				row.FinalThrough, row.RereadThrough = laterOf(row.FinalThrough, s.FinalThrough), laterOf(row.RereadThrough, s.RereadThrough)
				row.UpdatedAt = laterOf(row.UpdatedAt, s.UpdatedAt.Add(time.Second))
			}
			rows = append(rows, row)
		}
		if err := c.f.cfg.Store.WriteProgress(ctx, rows); err != nil {
			return fmt.Errorf("write progress of org %s: %w", o.org.ID, err)
		}
	}
	return nil
}

func fromUnix32(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// finish records the outcome: every listed org's watermark (the oldest complete-through among
// its listed projects), each org's run row, the cycle's metrics and freshness. It returns err,
// joined with the orgs' failures and any failure to record.
func (c *cycle) finish(ctx context.Context, err error) error {
	c.sum.Calls = c.budget.Used()
	c.sum.Duration = time.Since(c.wallStart)
	errs := []error{err}
	for _, o := range c.orgs {
		if o.listed && err == nil {
			if werr := c.advanceWatermark(ctx, o); werr != nil {
				errs = append(errs, werr)
				o.fail(werr)
			}
		}
		outcome := c.orgOutcome(o, err)
		if rerr := c.finishOrg(ctx, o, outcome, err); rerr != nil {
			errs = append(errs, rerr)
		}
		if outcome == OutcomeFailed && o.err != nil {
			errs = append(errs, fmt.Errorf("org %s: %w", o.org.ID, o.err))
		}
		c.sum.Orgs = append(c.sum.Orgs, o.sum)
		c.sum.ValuesFetched += o.sum.ValuesFetched
		c.sum.RowsWritten += o.sum.RowsWritten
		c.sum.Revisions += o.sum.Revisions
	}
	if err == nil {
		c.sum.Tiers = c.freshness()
	}
	c.f.cfg.Metrics.observeCycle(c.sum, errors.Join(errs...))
	return errors.Join(errs...)
}

// orgOutcome is how an org's run ended, given the cycle's error.
func (c *cycle) orgOutcome(o *orgCycle, err error) Outcome {
	switch {
	case errors.Is(err, ErrStopped):
		return OutcomeStopped
	case err != nil || o.err != nil:
		return OutcomeFailed
	}
	return OutcomeSuccess
}

// advanceWatermark sets the org's watermark to the oldest complete-through among its listed
// projects, which existing readers (status, enforcement) take as "every hour before it is
// collected".
func (c *cycle) advanceWatermark(ctx context.Context, o *orgCycle) error {
	wm, ok := c.st.oldest(o.idx)
	if !ok {
		return nil
	}
	if !o.hasWM || !wm.Equal(o.wm) {
		feed := Feed{OrgID: o.org.ID, Endpoint: o.org.Endpoint, Granularity: GranularityHourly}
		if err := c.f.cfg.Store.SetWatermark(ctx, feed, wm, c.f.cfg.Now()); err != nil {
			return fmt.Errorf("set the watermark of org %s: %w", o.org.ID, err)
		}
	}
	o.sum.Watermark = wm
	return nil
}

// finishOrg writes the org's final run row. Its window runs from the earliest hour the cycle
// asked for to the org's watermark after it, so status's gaps stay "hours not yet complete for
// every project".
func (c *cycle) finishOrg(ctx context.Context, o *orgCycle, outcome Outcome, err error) error {
	run := o.run
	run.WindowTo = run.WindowFrom
	if outcome == OutcomeSuccess && o.sum.Watermark.After(run.WindowFrom) {
		run.WindowTo = o.sum.Watermark
	}
	o.sum.From, o.sum.To = run.WindowFrom, run.WindowTo
	o.sum.Outcome, run.Outcome = outcome, outcome
	switch {
	case outcome == OutcomeStopped:
		run.Error = err.Error()
	case o.err != nil:
		run.Error = o.err.Error()
	case err != nil:
		run.Errors, run.Error = run.Errors+1, err.Error()
	}
	o.sum.Duration = time.Since(c.wallStart)
	run.Pages, run.ValuesFetched = uint64(o.sum.Pages), uint64(o.sum.ValuesFetched)
	run.RowsWritten, run.Revisions, run.Retries = uint64(o.sum.RowsWritten), uint64(o.sum.Revisions), uint64(o.sum.Retries)
	run.DurationSeconds = o.sum.Duration.Seconds()
	run.FinishedAt = c.f.cfg.Now()
	if !run.FinishedAt.After(run.StartedAt) {
		run.FinishedAt = run.StartedAt.Add(time.Second) // the final row must replace the start row
	}
	if werr := c.f.cfg.Store.WriteRun(ctx, run); werr != nil {
		return fmt.Errorf("record the run outcome of org %s: %w", o.org.ID, werr)
	}
	c.f.cfg.Metrics.observeOrg(o.sum, c.f.cfg.Now())
	if outcome != OutcomeSuccess {
		o.log.Warn("org run did not succeed", "outcome", outcome, logkey.Err, run.Error)
	}
	return nil
}

// freshness is every org's tiers after the cycle: per tier, its projects (as classified when
// planning) and the oldest complete-through among them.
func (c *cycle) freshness() []TierFreshness {
	var out []TierFreshness
	for _, o := range c.orgs {
		if !o.listed {
			continue
		}
		var stats [numTiers]TierFreshness
		from, to := c.st.orgRange(o.idx)
		for i := from; i < to; i++ {
			t := c.plan.Tier[i]
			s := &stats[t]
			ct := fromUnix32(c.st.projects[i].CompleteThrough)
			if s.Projects == 0 || ct.Before(s.Oldest) {
				s.Oldest = ct
			}
			s.Projects++
		}
		for _, b := range c.plan.Batches {
			if int(b.Org) == o.idx {
				for _, m := range b.Members {
					stats[c.plan.Tier[m]].Planned++
				}
			}
		}
		for _, t := range Tiers() {
			s := stats[t]
			s.OrgID, s.Tier = o.org.ID, t
			if s.Projects > 0 {
				s.Age = c.now.Sub(s.Oldest)
			}
			out = append(out, s)
		}
	}
	return out
}
