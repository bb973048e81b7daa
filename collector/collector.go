// Package collector pulls every project's hourly consumption from the Neon API into
// ClickHouse, exactly and idempotently.
//
// A sweep reads [watermark − lookback, now) at hourly granularity and takes each page through
// the same steps (sweep.go):
//
//  1. fetch a page of up to 100 projects with all metrics from Neon (ConsumptionReader);
//  2. load what the Store holds for the same projects and window;
//  3. diff the two (Diff): only what is new or changed is kept, and each change of a stored
//     value is logged as a revision;
//  4. write the changes, revisions first;
//  5. once every page succeeded, advance the watermark and record the run.
//
// So a re-run writes nothing, and a killed sweep leaves nothing a re-run does not repair.
// Memory is bounded by a few pages plus two insert batches. Backfill (backfill.go) does the same
// for windows beyond Neon's hourly history at daily and monthly granularity.
//
// For fleets too large to sweep within Neon's consumption limit, a Fleet (fleet.go) runs
// budgeted cycles: it lists the projects, plans a fixed number of calls by priority (PlanCycle,
// schedule.go: a closing billing period, active projects, projects at risk, then a rolling sweep
// of everyone), fetches each call for up to 100 named projects through the same diff, and keeps
// each project's progress (cycle*.go).
//
// The package holds the domain (facts, revisions, runs and their outcomes, the diff, the
// schedule of a backfill) and declares the storage it needs (Store, CoarseStore,
// StatusReader); collector/chstore implements them on ClickHouse.
package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/neon"
)

// HourlyWindow is how far back Neon serves hourly consumption. Sweeps stay an hour inside it so
// a request never races the edge.
const HourlyWindow = 168 * time.Hour

// Config holds a collector's dependencies and tunables.
type Config struct {
	Consumption ConsumptionReader
	Store       Store
	OrgID       string
	Endpoint    Endpoint // default v2
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
	// Bounds are the per-metric ceilings of one project-hour (default DefaultBounds()); a page
	// holding a value above them is refused whole.
	Bounds Bounds
	// MinProjectsRatio: a sweep seeing fewer projects than this share of the last successful
	// sweep's, or none when it saw some, fails without advancing the watermark (default 0.5).
	MinProjectsRatio float64
	// AcceptProjectDrop skips that check, for an operator confirming projects really went.
	AcceptProjectDrop bool
	// Deadline bounds each run, from its start to its last page (default 45m); a run past it
	// fails and records why.
	Deadline time.Duration
	// Speed is how many times faster than real time Now runs (default 1; a benchmark's or a
	// soak's accelerated clock): Deadline is of Now's time, so a run waits Deadline/Speed of
	// real time.
	Speed float64
	// MaxPages ends a listing whose cursor never ends (default neon.DefaultMaxPages).
	MaxPages int
	// Host and PID are recorded with each run (default this host and process).
	Host string
	PID  int
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
	if cfg.Consumption == nil {
		errs = append(errs, errors.New("collector: Consumption is required"))
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
	if !cfg.Endpoint.Valid() {
		errs = append(errs, fmt.Errorf("collector: unknown endpoint %q (want %s or %s)", cfg.Endpoint, EndpointV2, EndpointLegacy))
	}
	if len(cfg.MetricNames) == 0 {
		if cfg.Endpoint == EndpointLegacy {
			cfg.MetricNames = neon.LegacyMetrics()
		} else {
			cfg.MetricNames = neon.V2Metrics()
		}
	}
	if cfg.Provisional < 0 {
		errs = append(errs, fmt.Errorf("collector: negative provisional window %v", cfg.Provisional))
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	errs = append(errs, cfg.runDefaults()...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(logkey.Component, "collector", logkey.OrgID, cfg.OrgID, "endpoint", string(cfg.Endpoint))
	return &Collector{cfg: cfg, log: log}, nil
}

// runDefaults fills and checks the settings a sweep shares with a Fleet's cycle: lookback,
// flushes, bounds, completeness, deadlines, what a run records, the clock and the logger.
func (cfg *Config) runDefaults() []error {
	var errs []error
	if cfg.Lookback <= 0 {
		cfg.Lookback = 48 * time.Hour
	}
	if cfg.FlushRows <= 0 {
		cfg.FlushRows = 20_000
	}
	if cfg.Bounds == nil {
		cfg.Bounds = DefaultBounds()
	}
	switch {
	case cfg.MinProjectsRatio == 0:
		cfg.MinProjectsRatio = DefaultMinProjectsRatio
	case !(cfg.MinProjectsRatio > 0 && cfg.MinProjectsRatio <= 1):
		errs = append(errs, fmt.Errorf("collector: MinProjectsRatio %v is not in (0, 1]", cfg.MinProjectsRatio))
	}
	switch {
	case cfg.Deadline == 0:
		cfg.Deadline = DefaultDeadline
	case cfg.Deadline < 0:
		errs = append(errs, fmt.Errorf("collector: negative deadline %v", cfg.Deadline))
	}
	switch {
	case cfg.Speed == 0:
		cfg.Speed = 1
	case !(cfg.Speed > 0) || math.IsInf(cfg.Speed, 0):
		errs = append(errs, fmt.Errorf("collector: clock speed %v is not a positive number", cfg.Speed))
	}
	if cfg.MaxPages < 0 {
		errs = append(errs, fmt.Errorf("collector: negative MaxPages %d", cfg.MaxPages))
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.PID == 0 {
		cfg.PID = os.Getpid()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return errs
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
	Outcome                          Outcome
	Watermark                        time.Time // after the sweep
}

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

// realSpan is how long d of a clock running speed times faster than real time lasts in real
// time, which timers count.
func realSpan(d time.Duration, speed float64) time.Duration {
	return time.Duration(float64(d) / speed)
}
