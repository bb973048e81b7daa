package collector

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// fetchedBatch is one planned call's answer, or the error that ended it.
type fetchedBatch struct {
	batch    int // index into the plan
	ids      []string
	pages    []*neon.ConsumptionPage
	attempts int
	err      error
}

// pendingWrites are changes diffed but not yet inserted, with the progress they earn once they
// are: a project's progress is written only after its facts.
type pendingWrites struct {
	facts    []Fact
	revs     []Revision
	progress []progressUpdate
	batches  int
}

// progressUpdate is one project's progress after a call: complete through the call's end, and
// final through the hours Neon had stopped revising when the cycle began.
type progressUpdate struct {
	project                int32
	org                    int
	through, final, reread uint32
	active                 uint32
}

// execute fetches the plan's calls in order, one call ahead of the diff and writes, until the
// plan or the budget ends. A call's failure leaves its projects where they were; an org that
// Neon refuses (no consumption history, unknown org, refused key) is skipped for the rest of
// the cycle; the budget running out ends the fetching, not in failure.
func (c *cycle) execute(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := c.fetchBatches(ctx)
	var pend pendingWrites
	var err error
	for fb := range fetched {
		if err = c.process(ctx, fb, &pend); err == nil && len(pend.facts) >= c.f.cfg.FlushRows {
			err = c.flush(ctx, &pend)
		}
		if err != nil {
			cancel()
			for range fetched {
			}
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cycle interrupted after %d of %d calls: %w", c.sum.Collected, c.sum.Batches, err)
	}
	return c.flush(ctx, &pend)
}

// nearDeadline reports whether the cycle's deadline is too near to start another call and still
// write what it fetched: a budget sized to the whole span (the rate × the deadline) cannot all
// be spent after the listing, and a cycle that ran out of time on purpose has not failed. The
// margin is a thirtieth of the deadline, or the slowest call and write so far if longer (they
// take real time, however fast the clock runs), but never a quarter of the deadline: one
// pathological write must not end every later call early.
func (c *cycle) nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return false
	}
	span := realSpan(c.f.cfg.Deadline, c.f.cfg.Speed)
	margin := min(span/4, max(span/30, time.Duration(c.slowestCall.Load()+c.slowestWrite.Load())))
	if left := time.Until(dl); left < margin {
		c.f.log.Info("cycle stops starting calls before its deadline", "left", left.Round(time.Millisecond), "margin", margin.Round(time.Millisecond),
			"slowest_call", time.Duration(c.slowestCall.Load()).Round(time.Millisecond), "slowest_write", time.Duration(c.slowestWrite.Load()).Round(time.Millisecond))
		return true
	}
	return false
}

// setMax raises m to d if d is longer.
func setMax(m *atomic.Int64, d time.Duration) {
	for {
		old := m.Load()
		if int64(d) <= old || m.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// fetchBatches reads the plan's calls in a goroutine of its own, one ahead of the diff.
func (c *cycle) fetchBatches(ctx context.Context) <-chan fetchedBatch {
	out := make(chan fetchedBatch, 1)
	go func() {
		defer close(out)
		refused := map[uint16]bool{}
		for i := range c.plan.Batches {
			b := &c.plan.Batches[i]
			if refused[b.Org] {
				continue
			}
			if c.budget.Left() == 0 || c.nearDeadline(ctx) {
				return // the rest waits for the next cycle
			}
			began := time.Now()
			fb := c.fetch(ctx, i)
			setMax(&c.slowestCall, time.Since(began))
			select {
			case out <- fb:
			case <-ctx.Done():
				return
			}
			switch {
			case fb.err == nil:
			case errors.Is(fb.err, neon.ErrAttemptBudget), ctx.Err() != nil:
				return
			case errors.Is(fb.err, neon.ErrNoConsumptionHistory), errors.Is(fb.err, neon.ErrUnauthorized), errors.Is(fb.err, neon.ErrNotFound):
				refused[b.Org] = true
			}
		}
	}()
	return out
}

// fetch reads one call: the batch's projects over its window, every page of the answer.
func (c *cycle) fetch(ctx context.Context, i int) fetchedBatch {
	b := &c.plan.Batches[i]
	o := c.orgs[b.Org]
	fb := fetchedBatch{batch: i, ids: make([]string, len(b.Members))}
	for k, m := range b.Members {
		fb.ids[k] = c.st.idString(m)
	}
	q := neon.ConsumptionQuery{
		OrgID: o.org.ID, From: b.From, To: b.To, Granularity: neon.GranularityHourly,
		Metrics: o.org.MetricNames, ProjectIDs: fb.ids, Limit: MaxBatch, Budget: c.budget,
	}
	pages := c.f.cfg.Neon.ConsumptionV2
	if o.org.Endpoint == EndpointLegacy {
		pages = c.f.cfg.Neon.ConsumptionLegacy
	}
	before := c.budget.Used()
	for page, err := range pages(ctx, q) {
		if err != nil {
			fb.err = err
			break
		}
		fb.pages = append(fb.pages, page)
	}
	fb.attempts = c.budget.Used() - before
	return fb
}

// process diffs one fetched call. Its facts and the progress they earn join the pending
// writes only when the whole answer is sound: a call with a value above its bound, or any
// other bad page, is refused whole. Only a store failure is returned.
func (c *cycle) process(ctx context.Context, fb fetchedBatch, pend *pendingWrites) error {
	b := &c.plan.Batches[fb.batch]
	o := c.orgs[b.Org]
	o.sum.APIRequests += int64(fb.attempts)
	o.sum.Retries += int64(max(fb.attempts-len(fb.pages), 0))
	if fb.err != nil {
		if !errors.Is(fb.err, neon.ErrAttemptBudget) {
			o.fail(c.fetchError(o, fb.err))
		}
		return nil
	}
	var facts []Fact
	var revs []Revision
	present := map[string]bool{}
	opts := DiffOptions{Version: c.version, CollectedAt: c.now, RunID: o.sum.RunID, ProvisionalFrom: c.last.Add(-c.f.cfg.Provisional)}
	for n, page := range fb.pages {
		g, err := FlattenPage(o.org.ID, page, o.org.MetricNames, Buckets(GranularityHourly, b.From, b.To))
		if err == nil {
			err = CheckBounds(g, c.f.cfg.Bounds, GranularityHourly)
		}
		if err != nil {
			o.fail(fmt.Errorf("call of %d projects [%s, %s) page %d: %w", len(fb.ids), b.From.Format(time.RFC3339), b.To.Format(time.RFC3339), n+1, err))
			return nil
		}
		start := time.Now()
		if err := c.f.cfg.Store.LoadStored(ctx, g, b.From, b.To); err != nil {
			return fmt.Errorf("read stored facts of org %s: %w", o.org.ID, err)
		}
		o.sum.StoreRead += time.Since(start)
		d := Diff(g, opts)
		facts, revs = append(facts, d.Facts...), append(revs, d.Revisions...)
		for _, id := range g.Projects {
			present[id] = true
		}
		o.sum.Pages++
		o.sum.ValuesFetched += int64(g.Values)
	}
	pend.facts, pend.revs = append(pend.facts, facts...), append(pend.revs, revs...)
	c.earn(b, fb.ids, present, pend)
	return nil
}

// earn queues the progress of a call's projects Neon answered for; one it left out stays
// where it was. A project whose progress was older than the call's start had hours beyond
// Neon's hourly window: they are lost at hourly grain, which is counted and logged. The call's
// hours within the provisional window of the cycle's start are collected but not final; the
// planner's windows start at least that far before complete-through, so the next call re-reads
// them.
func (c *cycle) earn(b *Batch, ids []string, present map[string]bool, pend *pendingWrites) {
	through, from := unix32(b.To), unix32(b.From)
	final := min(through, unix32(c.now.Add(-c.f.cfg.Provisional).Truncate(time.Hour)))
	lost := 0
	for k, m := range b.Members {
		if !present[ids[k]] {
			c.sum.Absent++
			continue
		}
		p := &c.st.projects[m]
		if p.CompleteThrough < from {
			lost++
		}
		reread := p.reread()
		if b.Deep {
			reread = max(through, reread)
		}
		pend.progress = append(pend.progress, progressUpdate{project: m, org: int(b.Org), through: max(through, p.CompleteThrough), final: final,
			reread: reread, active: max(p.LastActive, p.SeenActive)})
	}
	pend.batches++
	if lost > 0 {
		c.sum.PastHorizon += lost
		c.orgs[b.Org].log.Warn("projects were behind Neon's 168 hours of hourly data; the hours before the window are lost at hourly grain, backfill them",
			"projects", lost, "window_from", b.From)
	}
}

// fetchError names a failed call for the org's run.
func (c *cycle) fetchError(o *orgCycle, err error) error {
	if errors.Is(err, neon.ErrNoConsumptionHistory) {
		return fmt.Errorf("organization %s: its Neon plan has no consumption history on the %s route (403); nothing was recorded: %w", o.org.ID, o.org.Endpoint, err)
	}
	return fmt.Errorf("fetch a call: %w", err)
}
