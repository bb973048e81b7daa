// Package collector pulls every project's hourly consumption from the Neon API into
// ClickHouse, exactly and idempotently.
//
// A sweep reads [watermark − lookback, now) at hourly granularity, one page of up to 100
// projects per request with all metrics, and for each page compares Neon's values with what
// ClickHouse holds for the same projects and window (Diff). It writes only what is new or
// changed, logging each change of a stored value as a revision, so a re-run writes nothing and
// a killed sweep leaves nothing a re-run does not repair. The watermark advances only when the
// whole window succeeded. Memory is bounded by one page plus one insert batch.
package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// Endpoint names which consumption route a collector reads.
type Endpoint string

const (
	EndpointV2     Endpoint = "v2"
	EndpointLegacy Endpoint = "legacy"
)

// HourlyWindow is how far back Neon serves hourly consumption. Sweeps stay an hour inside it so
// a request never races the edge.
const HourlyWindow = 168 * time.Hour

// Source is the part of the Neon client a collector uses. None of these calls wakes a compute.
type Source interface {
	ConsumptionV2(ctx context.Context, q neon.ConsumptionQuery) iter.Seq2[*neon.ConsumptionPage, error]
	ConsumptionLegacy(ctx context.Context, q neon.ConsumptionQuery) iter.Seq2[*neon.ConsumptionPage, error]
	Stats() neon.Stats
}

// Store is the part of ClickHouse a collector reads and writes.
type Store interface {
	// LoadStored records in the grid every stored hourly fact of its projects and metrics in
	// [from, to).
	LoadStored(ctx context.Context, g *Grid, from, to time.Time) error
	InsertFacts(ctx context.Context, facts []schema.Fact) error
	InsertRevisions(ctx context.Context, revs []schema.Revision) error
	WriteRun(ctx context.Context, r schema.Run) error
	LastRun(ctx context.Context, orgID, endpoint, granularity string) (schema.Run, bool, error)
	Watermark(ctx context.Context, orgID, endpoint, granularity string) (time.Time, bool, error)
	SetWatermark(ctx context.Context, orgID, endpoint, granularity string, coveredUntil, now time.Time) error
}

// Config holds a collector's dependencies and tunables.
type Config struct {
	Source   Source
	Store    Store
	OrgID    string
	Endpoint Endpoint // default v2
	// MetricNames are the Neon metrics requested; default every metric of the endpoint.
	MetricNames []string
	// Lookback is how far before the watermark a sweep re-reads (default 48h, clamped to Neon's
	// hourly window).
	Lookback time.Duration
	// Provisional is the span of most recent hours Neon may still revise (default 2h).
	Provisional time.Duration
	// PageSize is projects per request (default and maximum 100).
	PageSize int
	// FlushRows is how many changed rows are buffered before an insert (default 20,000).
	FlushRows int
	// Now is the clock (default time.Now).
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics // optional
	// Progress, if set, is told after every page.
	Progress func(Progress)
}

// Progress is a sweep's state after a page.
type Progress struct {
	Pages          int
	EstimatedPages int // 0 when unknown (no earlier run)
	Values         int64
	Elapsed        time.Duration
}

// Collector runs sweeps for one org and endpoint.
type Collector struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns a collector.
func New(cfg Config) (*Collector, error) {
	var errs []error
	if cfg.Source == nil {
		errs = append(errs, errors.New("collector: Source is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("collector: Store is required"))
	}
	if cfg.OrgID == "" {
		errs = append(errs, errors.New("collector: OrgID is required"))
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = EndpointV2
	}
	if cfg.Endpoint != EndpointV2 && cfg.Endpoint != EndpointLegacy {
		errs = append(errs, fmt.Errorf("collector: unknown endpoint %q (want v2 or legacy)", cfg.Endpoint))
	}
	if len(cfg.MetricNames) == 0 {
		if cfg.Endpoint == EndpointLegacy {
			cfg.MetricNames = neon.LegacyMetrics()
		} else {
			cfg.MetricNames = neon.V2Metrics()
		}
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = 48 * time.Hour
	}
	if cfg.Provisional < 0 {
		errs = append(errs, fmt.Errorf("collector: negative provisional window %v", cfg.Provisional))
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	if cfg.FlushRows <= 0 {
		cfg.FlushRows = 20_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Collector{cfg: cfg, log: cfg.Logger.With("component", "collector", "org_id", cfg.OrgID, "endpoint", string(cfg.Endpoint))}, nil
}

// Window is a sweep's time range; zero values mean "from the watermark" and "up to now".
type Window struct {
	From, To time.Time
}

// Summary reports one sweep.
type Summary struct {
	RunID         string
	OrgID         string
	Endpoint      Endpoint
	From, To      time.Time
	Pages         int
	Projects      int
	ValuesFetched int64
	RowsWritten   int64
	Revisions     int64
	APIRequests   int64
	Retries       int64
	Duration      time.Duration
	// Where the time went: the diff waiting for prepared pages (fetch, decode and the stored-fact
	// read run ahead of it), reading stored facts, inserting changes.
	FetchWait, StoreRead, StoreWrite time.Duration
	Outcome                          string
	Watermark                        time.Time // after the sweep
}

const granularityHourly = "hourly"

// ResolveWindow computes the hourly window of a sweep from the request, the watermark and the
// clock: [watermark − lookback, last complete hour], clamped to Neon's hourly window.
func ResolveWindow(w Window, now time.Time, watermark time.Time, hasWatermark bool, lookback time.Duration) (from, to time.Time, err error) {
	to = now.UTC().Truncate(time.Hour)
	if !w.To.IsZero() {
		if w.To.After(to) {
			return from, to, fmt.Errorf("window end %s is after the last complete hour %s", w.To.UTC().Format(time.RFC3339), to.Format(time.RFC3339))
		}
		to = w.To.UTC().Truncate(time.Hour)
	}
	// Neon measures its window back from its own clock, whatever window is asked for.
	earliest := now.UTC().Truncate(time.Hour).Add(-(HourlyWindow - time.Hour))
	switch {
	case !w.From.IsZero():
		from = w.From.UTC().Truncate(time.Hour)
		if from.Before(earliest) {
			return from, to, fmt.Errorf("window start %s is older than Neon's 168 h of hourly history (earliest %s); use backfill, which falls back to daily and monthly data",
				from.Format(time.RFC3339), earliest.Format(time.RFC3339))
		}
	case hasWatermark:
		from = watermark.UTC().Add(-lookback).Truncate(time.Hour)
	default:
		from = to.Add(-lookback)
	}
	if from.Before(earliest) {
		from = earliest
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("empty window [%s, %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// Sweep collects one window. It records the run, and on success advances the watermark.
func (c *Collector) Sweep(ctx context.Context, w Window) (Summary, error) {
	start := c.cfg.Now()
	wallStart := time.Now()
	sum := Summary{RunID: newRunID(), OrgID: c.cfg.OrgID, Endpoint: c.cfg.Endpoint}
	wm, hasWM, err := c.cfg.Store.Watermark(ctx, c.cfg.OrgID, string(c.cfg.Endpoint), granularityHourly)
	if err != nil {
		return sum, fmt.Errorf("read watermark: %w", err)
	}
	if hasWM && start.Sub(wm) > HourlyWindow-time.Hour {
		c.log.Warn("watermark is older than Neon's hourly history; the hours between are lost at hourly grain, run backfill",
			"watermark", wm, "hourly_window", HourlyWindow)
	}
	sum.From, sum.To, err = ResolveWindow(w, start, wm, hasWM, c.cfg.Lookback)
	if err != nil {
		return sum, err
	}
	log := c.log.With("run_id", sum.RunID)
	run := schema.Run{
		RunID: sum.RunID, OrgID: c.cfg.OrgID, Endpoint: string(c.cfg.Endpoint), Granularity: granularityHourly,
		WindowFrom: sum.From, WindowTo: sum.To, StartedAt: start, Outcome: schema.OutcomeRunning,
	}
	if err := c.cfg.Store.WriteRun(ctx, run); err != nil {
		return sum, fmt.Errorf("record run start: %w", err)
	}
	estimated := 0
	if last, ok, err := c.cfg.Store.LastRun(ctx, c.cfg.OrgID, string(c.cfg.Endpoint), granularityHourly); err == nil && ok {
		estimated = int(last.Pages)
	}
	log.Info("sweep started", "from", sum.From, "to", sum.To, "estimated_pages", estimated)

	before := c.cfg.Source.Stats()
	sweepErr := c.sweep(ctx, &sum, start, estimated, wallStart)
	after := c.cfg.Source.Stats()
	sum.APIRequests = after.Requests - before.Requests
	sum.Retries = after.Retries - before.Retries
	sum.Duration = time.Since(wallStart)

	sum.Watermark = wm
	// Record the outcome even when the caller's context is done: a cancelled sweep is a fact.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if sweepErr == nil {
		switch {
		case !hasWM || (!sum.From.After(wm) && sum.To.After(wm)):
			if err := c.cfg.Store.SetWatermark(recCtx, c.cfg.OrgID, string(c.cfg.Endpoint), granularityHourly, sum.To, c.cfg.Now()); err != nil {
				sweepErr = fmt.Errorf("advance watermark: %w", err)
			} else {
				sum.Watermark = sum.To
			}
		case sum.From.After(wm):
			log.Warn("window starts after the watermark; watermark not advanced, the hours between stay a gap",
				"watermark", wm, "from", sum.From)
		}
	}
	sweepErr = c.finishRun(recCtx, run, &sum, sweepErr)
	c.cfg.Metrics.observe(sum, sweepErr == nil, c.cfg.Now())
	if sweepErr != nil {
		log.Error("sweep failed", "err", sweepErr, "pages", sum.Pages, "rows_written", sum.RowsWritten)
		return sum, sweepErr
	}
	log.Info("sweep done", "pages", sum.Pages, "projects", sum.Projects, "values", sum.ValuesFetched,
		"rows_written", sum.RowsWritten, "revisions", sum.Revisions, "api_requests", sum.APIRequests,
		"retries", sum.Retries, "duration", sum.Duration, "fetch_wait", sum.FetchWait,
		"store_read", sum.StoreRead, "store_write", sum.StoreWrite)
	return sum, nil
}

// finishRun records a run's final row from its summary and error, and sets the summary's
// outcome. It returns err, joined with a failure to record.
func (c *Collector) finishRun(ctx context.Context, run schema.Run, sum *Summary, err error) error {
	sum.Outcome = schema.OutcomeSuccess
	if err != nil {
		sum.Outcome = schema.OutcomeFailed
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

type fetched struct {
	page *neon.ConsumptionPage
	n    int // 1-based page number, for errors
	err  error
}

func (c *Collector) pages(ctx context.Context, from, to time.Time) iter.Seq2[*neon.ConsumptionPage, error] {
	q := neon.ConsumptionQuery{
		OrgID: c.cfg.OrgID, From: from, To: to, Granularity: neon.GranularityHourly,
		Metrics: c.cfg.MetricNames, Limit: c.cfg.PageSize,
	}
	if c.cfg.Endpoint == EndpointLegacy {
		return c.cfg.Source.ConsumptionLegacy(ctx, q)
	}
	return c.cfg.Source.ConsumptionV2(ctx, q)
}

// sweep runs the pipeline of one window: a fetcher goroutine reads and decodes pages ahead, a
// reader goroutine reads what is stored for each page's projects, this goroutine diffs, and a
// writer goroutine inserts the changes, so Neon, both ClickHouse directions and the diff work at
// the same time. Memory stays bounded by the channels: a few pages and two insert batches.
func (c *Collector) sweep(ctx context.Context, sum *Summary, now time.Time, estimated int, wallStart time.Time) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan fetched, 1)
	go func() {
		defer close(pages)
		n := 0
		for page, err := range c.pages(ctx, sum.From, sum.To) {
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
	// Two readers: a page's stored-fact read waits mostly on ClickHouse, which has cores to
	// serve two at once. Pages are independent (each project is in one page), so their order
	// does not matter.
	prepared := make(chan preparedPage, 1)
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for f := range pages {
				p := c.prepare(ctx, f, sum.From, sum.To)
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

	batches := make(chan batch, 1)
	writeDone := make(chan error, 1)
	go func() {
		var err error
		for b := range batches {
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
		writeDone <- err
	}()
	var pending batch
	defer func() {
		// The writer's error explains a cancelled read or fetch better than either does.
		if len(pending.facts) > 0 && err == nil {
			batches <- pending
		}
		close(batches)
		if werr := <-writeDone; werr != nil {
			err = werr
		}
	}()

	provisionalFrom := now.UTC().Truncate(time.Hour).Add(-c.cfg.Provisional)
	version := uint64(time.Now().UnixNano())
	for {
		waitStart := time.Now()
		p, ok := <-prepared
		sum.FetchWait += time.Since(waitStart)
		if !ok {
			break
		}
		sum.StoreRead += p.readTime
		if p.err != nil {
			return p.err
		}
		d := Diff(p.grid, DiffOptions{ProvisionalFrom: provisionalFrom, Version: version, CollectedAt: now, RunID: sum.RunID})
		pending.facts = append(pending.facts, d.Facts...)
		pending.revs = append(pending.revs, d.Revisions...)
		if len(pending.facts) >= c.cfg.FlushRows {
			select {
			case batches <- pending:
			case <-ctx.Done():
			}
			pending = batch{}
		}
		sum.Pages++
		sum.Projects += len(p.grid.Projects)
		sum.ValuesFetched += int64(p.grid.Values)
		if c.cfg.Progress != nil {
			c.cfg.Progress(Progress{Pages: sum.Pages, EstimatedPages: estimated, Values: sum.ValuesFetched, Elapsed: time.Since(wallStart)})
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sweep interrupted after %d pages: %w", sum.Pages, err)
	}
	return nil
}

// preparedPage is a page's grid, holding what Neon reported and what ClickHouse holds.
type preparedPage struct {
	grid     *Grid
	readTime time.Duration
	err      error
}

// prepare flattens a page and reads the stored facts of its projects.
func (c *Collector) prepare(ctx context.Context, f fetched, from, to time.Time) preparedPage {
	n := f.n
	if f.err != nil {
		if errors.Is(f.err, neon.ErrNoConsumptionHistory) {
			return preparedPage{err: fmt.Errorf("organization %s: its Neon plan has no consumption history on the %s route (403); nothing was recorded: %w",
				c.cfg.OrgID, c.cfg.Endpoint, f.err)}
		}
		return preparedPage{err: fmt.Errorf("fetch page %d: %w", n, f.err)}
	}
	g, err := FlattenPage(c.cfg.OrgID, f.page, c.cfg.MetricNames, Buckets(neon.GranularityHourly, from, to))
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

// batch is a set of changes inserted together.
type batch struct {
	facts []schema.Fact
	revs  []schema.Revision
}

// write inserts a batch: revisions first, so a crash before the facts re-detects the same
// replacement, which the revisions table deduplicates by (key, old version).
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

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
