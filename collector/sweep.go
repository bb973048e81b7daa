package collector

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/neon"
)

// Run id kinds: a scheduled or requested sweep, and every run of a backfill.
const (
	runKindCollect  = "collect"
	runKindBackfill = "backfill"
)

// recordTimeout bounds writing a run's outcome and the watermark after the sweep's context is
// done: a cancelled sweep is still recorded, within a shutdown's grace.
const recordTimeout = 10 * time.Second

// sweepRun is one run in progress: its summary so far, its run row and what its steps share.
type sweepRun struct {
	sum          Summary
	run          Run
	log          *slog.Logger
	watermark    time.Time // before the run
	hasWatermark bool
	estimated    int // pages of the last successful run, 0 when unknown
	wallStart    time.Time
	apiBefore    neon.Stats
	diff         DiffOptions
	last         Run // the last successful run of the feed; zero when none
}

// Sweep collects one window. It records the run, and on success advances the watermark. A
// failure is returned, not logged: the caller decides what it means.
func (c *Collector) Sweep(ctx context.Context, w Window) (Summary, error) {
	return c.sweep(ctx, w, runKindCollect)
}

// sweep takes a window through the steps of a sweep within the deadline: start (watermark,
// window, run row), collect every page, check the project count, advance the watermark, record
// the outcome.
func (c *Collector) sweep(ctx context.Context, w Window, kind string) (Summary, error) {
	work, cancel := context.WithTimeoutCause(ctx, realSpan(c.cfg.Deadline, c.cfg.Speed), errDeadline)
	defer cancel()
	s, err := c.startSweep(work, w, kind)
	if err != nil {
		return s.sum, c.explain(ctx, work, s, err)
	}
	err = c.collectWindow(work, s)
	if err == nil {
		err = CheckProjects(c.cfg.OrgID, s.sum.Projects, s.last, c.cfg.MinProjectsRatio, c.cfg.AcceptProjectDrop)
	}
	err = c.explain(ctx, work, s, err)
	c.measure(s)
	recCtx, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	if err == nil {
		err = c.advanceWatermark(recCtx, s)
	}
	err = c.finishRun(recCtx, s, err)
	c.cfg.Metrics.observe(s.sum, c.cfg.Now())
	if err != nil {
		return s.sum, err
	}
	sum := s.sum
	s.log.Info("sweep done", "pages", sum.Pages, "projects", sum.Projects, "values", sum.ValuesFetched,
		"rows_written", sum.RowsWritten, "revisions", sum.Revisions, "api_requests", sum.APIRequests,
		"retries", sum.Retries, "duration", sum.Duration, "fetch_wait", sum.FetchWait,
		"store_read", sum.StoreRead, "store_write", sum.StoreWrite)
	return sum, nil
}

// explain names why a run ended early: its caller stopped it (ctx done: ErrStopped, not a
// failure), or its own deadline passed (work's cause), or err as it is.
func (c *Collector) explain(ctx, work context.Context, s *sweepRun, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w after %d pages (%v); what was written stays, the watermark did not move", ErrStopped, s.sum.Pages, context.Cause(ctx))
	case errors.Is(context.Cause(work), errDeadline) || pastDeadline(work):
		return fmt.Errorf("sweep deadline of %s (NEONMETER_COLLECT_DEADLINE) passed after %d pages; the watermark did not move: %w", c.cfg.Deadline, s.sum.Pages, err)
	}
	return err
}

// feed is the collector's feed at granularity g.
func (c *Collector) feed(g Granularity) Feed {
	return Feed{OrgID: c.cfg.OrgID, Endpoint: c.cfg.Endpoint, Granularity: g}
}

// pastDeadline reports whether ctx's deadline has passed even if its timer has not fired yet: a
// driver that set its socket deadline from ctx fails with an i/o timeout first.
func pastDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// startSweep reads the watermark, resolves the window from it and records the run's start.
func (c *Collector) startSweep(ctx context.Context, w Window, kind string) (*sweepRun, error) {
	now := c.cfg.Now()
	wm, hasWM, err := c.cfg.Store.Watermark(ctx, c.feed(GranularityHourly))
	if err != nil {
		return &sweepRun{sum: c.newSummary(kind, now)}, fmt.Errorf("read watermark: %w", err)
	}
	last, hasLast, err := c.cfg.Store.LastRun(ctx, c.feed(GranularityHourly))
	if err != nil {
		return &sweepRun{sum: c.newSummary(kind, now)}, fmt.Errorf("read the last successful run: %w", err)
	}
	if n, err := c.closeAbandoned(ctx, now); err != nil {
		c.log.Warn("could not record abandoned runs", logkey.Err, err)
	} else {
		c.cfg.Metrics.abandoned(c.cfg.Endpoint, n)
	}
	if hasWM && now.Sub(wm) > HourlyWindow-time.Hour {
		c.log.Warn("watermark is older than Neon's hourly history; the hours between are lost at hourly grain, run backfill",
			"watermark", wm, "hourly_window", HourlyWindow)
	}
	from, to, err := ResolveWindow(w, now, wm, hasWM, c.cfg.Lookback)
	if err != nil {
		s := &sweepRun{sum: c.newSummary(kind, now)}
		s.sum.From, s.sum.To = from, to // the window refused, for the caller's report
		return s, err
	}
	s, err := c.startRun(ctx, kind, now, GranularityHourly, from, to)
	if err != nil {
		return s, err
	}
	s.watermark, s.hasWatermark, s.sum.Watermark = wm, hasWM, wm
	// Neon may still revise the most recent hours: only before them does a value Neon no
	// longer reports mean 0.
	s.diff.ProvisionalFrom = now.UTC().Truncate(time.Hour).Add(-c.cfg.Provisional)
	if hasLast {
		s.last, s.estimated = last, int(last.Pages)
	}
	s.log.Info("sweep started", "from", from, "to", to, "estimated_pages", s.estimated)
	return s, nil
}

func (c *Collector) newSummary(kind string, start time.Time) Summary {
	return Summary{RunID: runid.New(kind, start), OrgID: c.cfg.OrgID, Endpoint: c.cfg.Endpoint}
}

// startRun records the start row of a run over [from, to) at granularity g.
func (c *Collector) startRun(ctx context.Context, kind string, start time.Time, g Granularity, from, to time.Time) (*sweepRun, error) {
	s := &sweepRun{sum: c.newSummary(kind, start), wallStart: time.Now()}
	s.sum.From, s.sum.To = from, to
	s.log = c.log.With(logkey.RunID, s.sum.RunID)
	s.run = Run{
		RunID: s.sum.RunID, OrgID: c.cfg.OrgID, Endpoint: c.cfg.Endpoint, Granularity: g,
		WindowFrom: from, WindowTo: to, StartedAt: start, Outcome: OutcomeRunning,
		Host: c.cfg.Host, PID: uint32(c.cfg.PID), DeadlineAt: start.Add(c.cfg.Deadline),
	}
	// A fresh version orders this run's facts after every earlier one's.
	s.diff = DiffOptions{Version: uint64(time.Now().UnixNano()), CollectedAt: start, RunID: s.sum.RunID}
	if err := c.cfg.Store.WriteRun(ctx, s.run); err != nil {
		return s, fmt.Errorf("record run start: %w", err)
	}
	s.apiBefore = c.cfg.Consumption.Stats()
	return s, nil
}

// collectWindow runs the pipeline of one window: a fetcher goroutine reads and decodes pages
// ahead, two reader goroutines load what is stored for each page's projects, this goroutine
// diffs, and a writer goroutine inserts the changes, so Neon, both ClickHouse directions and
// the diff work at the same time. Memory stays bounded by the channels: a few pages and two
// insert batches.
func (c *Collector) collectWindow(ctx context.Context, s *sweepRun) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := c.fetchPages(ctx, s.sum.From, s.sum.To)
	prepared := c.loadStoredPages(ctx, pages, s.sum.From, s.sum.To)
	w := c.startWriter(ctx, cancel, &s.sum)
	err := c.diffPages(ctx, prepared, w, s)
	// The writer's error explains a cancelled read or fetch better than either does.
	if werr := w.close(); werr != nil {
		err = werr
	}
	return err
}

// fetched is a page read from Neon, or the error that ended the reading.
type fetched struct {
	page *neon.ConsumptionPage
	n    int // 1-based page number, for errors
	err  error
}

// fetchPages reads the hourly pages of [from, to) in a goroutine of its own, one page ahead.
// The channel closes after the last page or the first error.
func (c *Collector) fetchPages(ctx context.Context, from, to time.Time) <-chan fetched {
	pages := make(chan fetched, 1)
	go func() {
		defer close(pages)
		n := 0
		for page, err := range c.pages(ctx, GranularityHourly, from, to) {
			n++
			select {
			case pages <- fetched{page, n, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return pages
}

// pages reads the consumption pages of [from, to) at granularity g from the collector's route.
func (c *Collector) pages(ctx context.Context, g Granularity, from, to time.Time) iter.Seq2[*neon.ConsumptionPage, error] {
	q := neon.ConsumptionQuery{
		OrgID: c.cfg.OrgID, From: from, To: to, Granularity: g.neonGranularity(),
		Metrics: c.cfg.MetricNames, Limit: c.cfg.PageSize, MaxPages: c.cfg.MaxPages,
	}
	if c.cfg.Endpoint == EndpointLegacy {
		return c.cfg.Consumption.ConsumptionLegacy(ctx, q)
	}
	return c.cfg.Consumption.ConsumptionV2(ctx, q)
}

// preparedPage is a page's grid, holding what Neon reported and what is stored.
type preparedPage struct {
	grid     *Grid
	readTime time.Duration
	err      error
}

// loadStoredPages flattens each fetched page and loads its stored facts, in two goroutines: a
// page's read waits mostly on ClickHouse, which has cores to serve two at once. Pages are
// independent (each project is in one page), so their order does not matter.
func (c *Collector) loadStoredPages(ctx context.Context, pages <-chan fetched, from, to time.Time) <-chan preparedPage {
	prepared := make(chan preparedPage, 1)
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for f := range pages {
				p := c.prepare(ctx, f, from, to)
				select {
				case prepared <- p:
				case <-ctx.Done():
					return
				}
				if p.err != nil {
					return
				}
			}
		})
	}
	go func() {
		readers.Wait()
		close(prepared)
	}()
	return prepared
}

// prepare flattens a page and loads the stored facts of its projects.
func (c *Collector) prepare(ctx context.Context, f fetched, from, to time.Time) preparedPage {
	n := f.n
	if f.err != nil {
		if errors.Is(f.err, neon.ErrNoConsumptionHistory) {
			return preparedPage{err: fmt.Errorf("organization %s: its Neon plan has no consumption history on the %s route (403); nothing was recorded: %w",
				c.cfg.OrgID, c.cfg.Endpoint, f.err)}
		}
		return preparedPage{err: fmt.Errorf("fetch page %d: %w", n, f.err)}
	}
	g, err := FlattenPage(c.cfg.OrgID, f.page, c.cfg.MetricNames, Buckets(GranularityHourly, from, to))
	if err == nil {
		err = CheckBounds(g, c.cfg.Bounds, GranularityHourly)
	}
	if err != nil {
		return preparedPage{err: fmt.Errorf("page %d: %w", n, err)}
	}
	start := time.Now()
	err = c.cfg.Store.LoadStored(ctx, g, from, to)
	p := preparedPage{grid: g, readTime: time.Since(start)}
	if err != nil {
		p.err = fmt.Errorf("read stored facts for page %d: %w", n, err)
	}
	return p
}

// diffPages diffs every prepared page and hands the changes to the writer in batches of at
// least FlushRows facts.
func (c *Collector) diffPages(ctx context.Context, prepared <-chan preparedPage, w *writer, s *sweepRun) error {
	var pending batch
	for {
		waitStart := time.Now()
		p, ok := <-prepared
		s.sum.FetchWait += time.Since(waitStart)
		if !ok {
			break
		}
		s.sum.StoreRead += p.readTime
		if p.err != nil {
			return p.err
		}
		d := Diff(p.grid, s.diff)
		pending.facts = append(pending.facts, d.Facts...)
		pending.revs = append(pending.revs, d.Revisions...)
		if len(pending.facts) >= c.cfg.FlushRows {
			w.send(ctx, pending)
			pending = batch{}
		}
		c.pageDone(s, p.grid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sweep interrupted after %d pages: %w", s.sum.Pages, err)
	}
	if len(pending.facts) > 0 {
		// Not given up on cancellation: the writer then fails the sweep instead of it
		// succeeding without these facts.
		w.batches <- pending
	}
	return nil
}

// pageDone counts a diffed page and reports progress.
func (c *Collector) pageDone(s *sweepRun, g *Grid) {
	s.sum.Pages++
	s.sum.Projects += len(g.Projects)
	s.sum.ValuesFetched += int64(g.Values)
	if c.cfg.Progress != nil {
		c.cfg.Progress(Progress{Pages: s.sum.Pages, EstimatedPages: s.estimated, Values: s.sum.ValuesFetched, Elapsed: time.Since(s.wallStart)})
	}
}

// batch is a set of changes inserted together.
type batch struct {
	facts []Fact
	revs  []Revision
}

// writer inserts batches in a goroutine of its own. After a failed insert it cancels the sweep
// and drains the rest.
type writer struct {
	batches chan batch
	done    chan error
}

// startWriter starts the writer; it counts what it wrote in sum.
func (c *Collector) startWriter(ctx context.Context, cancel context.CancelFunc, sum *Summary) *writer {
	w := &writer{batches: make(chan batch, 1), done: make(chan error, 1)}
	go func() {
		var err error
		for b := range w.batches {
			if err != nil {
				continue // drain after a failure; the sweep is being cancelled
			}
			start := time.Now()
			if err = c.write(ctx, b); err != nil {
				cancel()
			} else {
				sum.RowsWritten += int64(len(b.facts))
				sum.Revisions += int64(len(b.revs))
			}
			sum.StoreWrite += time.Since(start)
		}
		w.done <- err
	}()
	return w
}

// send hands a batch to the writer, unless the sweep is cancelled first.
func (w *writer) send(ctx context.Context, b batch) {
	select {
	case w.batches <- b:
	case <-ctx.Done():
	}
}

// close waits for the writer to finish and returns its first insert error.
func (w *writer) close() error {
	close(w.batches)
	return <-w.done
}

// write inserts a batch: revisions first, so a crash before the facts re-detects the same
// replacement, which the store deduplicates by (key, old version).
func (c *Collector) write(ctx context.Context, b batch) error {
	if len(b.revs) > 0 {
		if err := c.cfg.Store.InsertRevisions(ctx, b.revs); err != nil {
			return fmt.Errorf("insert revisions: %w", err)
		}
	}
	if len(b.facts) > 0 {
		if err := c.cfg.Store.InsertFacts(ctx, b.facts); err != nil {
			return fmt.Errorf("insert facts: %w", err)
		}
	}
	return nil
}

// advanceWatermark moves the watermark to the end of a successful sweep's window, when the
// window joins the covered hours: starting after the watermark would leave the hours between
// uncovered, so then the watermark stays.
func (c *Collector) advanceWatermark(ctx context.Context, s *sweepRun) error {
	from, to, wm := s.sum.From, s.sum.To, s.watermark
	switch {
	case !s.hasWatermark || (!from.After(wm) && to.After(wm)):
		if err := c.cfg.Store.SetWatermark(ctx, c.feed(GranularityHourly), to, c.cfg.Now()); err != nil {
			return fmt.Errorf("advance watermark: %w", err)
		}
		s.sum.Watermark = to
	case from.After(wm):
		s.log.Warn("window starts after the watermark; watermark not advanced, the hours between stay a gap",
			"watermark", wm, "from", from)
	}
	return nil
}

// measure counts the run's API requests and retries and its duration so far.
func (c *Collector) measure(s *sweepRun) {
	after := c.cfg.Consumption.Stats()
	s.sum.APIRequests = after.Requests - s.apiBefore.Requests
	s.sum.Retries = after.Retries - s.apiBefore.Retries
	s.sum.Duration = time.Since(s.wallStart)
}

// finishRun records a run's final row from its summary and error, and sets the summary's
// outcome. It returns err, joined with a failure to record.
func (c *Collector) finishRun(ctx context.Context, s *sweepRun, err error) error {
	sum, run := &s.sum, s.run
	switch {
	case err == nil:
		sum.Outcome = OutcomeSuccess
	case errors.Is(err, ErrStopped):
		sum.Outcome, run.Error = OutcomeStopped, err.Error()
	default:
		sum.Outcome = OutcomeFailed
		run.Errors, run.Error = 1, err.Error()
	}
	run.Outcome = sum.Outcome
	run.Pages, run.Projects = uint64(sum.Pages), uint64(sum.Projects)
	run.ValuesFetched, run.RowsWritten, run.Revisions = uint64(sum.ValuesFetched), uint64(sum.RowsWritten), uint64(sum.Revisions)
	run.Retries, run.DurationSeconds = uint64(sum.Retries), sum.Duration.Seconds()
	run.FinishedAt = c.cfg.Now()
	if !run.FinishedAt.After(run.StartedAt) {
		run.FinishedAt = run.StartedAt.Add(time.Second) // the final row must replace the start row
	}
	if werr := c.cfg.Store.WriteRun(ctx, run); werr != nil {
		return errors.Join(err, fmt.Errorf("record run outcome: %w", werr))
	}
	return err
}
