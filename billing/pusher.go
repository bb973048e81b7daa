package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/retry"
	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/plans"
)

// Defaults of Config's zero fields.
const (
	DefaultLookback    = 72 * time.Hour
	DefaultProvisional = 2 * time.Hour
	DefaultGrace       = time.Hour
	// DefaultRate paces meter events: half of the 1,000 calls/s Stripe allows the meter events
	// endpoint per account in live mode, outside its other limits (docs.stripe.com/rate-limits),
	// leaving the rest to the account's other integrations. 24,000 values take 48 s.
	DefaultRate = 500.0
	// DefaultAPIRate paces every other request (usage records, summaries, subscription
	// look-ups): half of Stripe's basic limit of 100 requests/s in live mode (25 in test mode).
	DefaultAPIRate     = 50.0
	DefaultConcurrency = 64
	DefaultMaxAttempts = 8
	DefaultRetryBase   = 500 * time.Millisecond
	DefaultRetryMax    = 20 * time.Second
	// DefaultFlushRows and DefaultFlushEvery bound the outcomes a kill can lose, and so the
	// requests the next cycle replays: 200 rows, or 2 s of work at a slower pace.
	DefaultFlushRows  = 200
	DefaultFlushEvery = 2 * time.Second
	// DefaultSummarySettle is how long reconcile waits after the newest push of a meter hour
	// before comparing it: Stripe processes meter events asynchronously and its summaries are
	// eventually consistent.
	DefaultSummarySettle = 15 * time.Minute
)

// Config is what a Pusher needs. Sink, Store, Accounts and Catalog are required.
type Config struct {
	// Sink sends values; NewStripeSink(client) in production.
	Sink Sink
	// Reader reads Stripe's summaries back for Reconcile; nil: Sink, when it reads too
	// (StripeSink does).
	Reader StripeReader
	// Store holds usage, the ledger, late adjustments and drift (billing/chstore in production).
	Store Store
	// Accounts holds the account history: who owned each project, on which plan, when.
	Accounts accounts.Store
	Catalog  *plans.Catalog
	// DefaultPlan applies to customers without a plan in force; empty: the catalog's first.
	DefaultPlan string
	// Lookback is how far back each cycle compares hours with the ledger (default 72 h);
	// running totals are read from the start of the period holding now − Lookback.
	Lookback time.Duration
	// Provisional hours before now wait (default 2 h).
	Provisional time.Duration
	// Grace is Stripe's invoice finalization grace after a period ends (default 1 h).
	Grace time.Duration
	// Finalized overrides the finalization rule (default: period end + Grace has passed).
	Finalized func(customerID string, hour time.Time) bool
	// MaxAge: hours older than now − MaxAge are late (default DefaultMaxAge).
	MaxAge time.Duration
	// Rate is the meter events sent per second (default DefaultRate); APIRate the other
	// requests per second (default DefaultAPIRate). Each is one pace shared by every worker.
	Rate, APIRate float64
	// Concurrency is how many (customer, target) queues are served at once (default 64): the
	// rate reached is at most Concurrency ÷ Stripe's latency.
	Concurrency int
	// MaxAttempts bounds the tries of one value per cycle (default 8).
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff with jitter (internal/retry).
	RetryBase, RetryMax time.Duration
	// FlushRows and FlushEvery: outcome rows are written once this many are buffered, and at
	// least this often (defaults DefaultFlushRows, DefaultFlushEvery).
	FlushRows  int
	FlushEvery time.Duration
	// SummarySettle: reconcile leaves out meter hours pushed less than this long ago (default
	// DefaultSummarySettle; negative compares them at once).
	SummarySettle time.Duration
	Logger        *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pusher pushes one cycle at a time. Only one Pusher may run against a database at once (the
// ledger's revisions assume a single writer); serve runs it after each sweep.
type Pusher struct {
	cfg Config
	log *slog.Logger
	// meterPacer paces meter events; apiPacer every other Stripe request (Stripe limits them
	// separately).
	meterPacer, apiPacer *pacer
	retry                retry.Backoff
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Pusher, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("billing config: %w", err)
	}
	cfg.fillDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pusher{cfg: cfg, log: log.With(logkey.Component, "billing"), meterPacer: newPacer(cfg.Rate), apiPacer: newPacer(cfg.APIRate),
		retry: retry.Backoff{Min: cfg.RetryBase, Max: cfg.RetryMax}}, nil
}

// pacer returns the pace of requests sending through sink.
func (p *Pusher) pacer(sink SinkKind) *pacer {
	if sink == SinkMeter {
		return p.meterPacer
	}
	return p.apiPacer
}

// check lists every problem of cfg; it resolves the default plan.
func (cfg *Config) check() error {
	var errs []error
	if cfg.Sink == nil {
		errs = append(errs, errors.New("no Stripe sink"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("no billing store"))
	}
	if cfg.Accounts == nil {
		errs = append(errs, errors.New("no accounts store"))
	}
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("no plan catalog"))
	} else {
		p, err := accounts.DefaultPlan(cfg.Catalog, cfg.DefaultPlan)
		errs = append(errs, err)
		cfg.DefaultPlan = p
	}
	if cfg.Rate < 0 || cfg.APIRate < 0 || cfg.Concurrency < 0 || cfg.MaxAttempts < 0 || cfg.Lookback < 0 || cfg.Provisional < 0 || cfg.Grace < 0 ||
		cfg.FlushRows < 0 || cfg.FlushEvery < 0 {
		errs = append(errs, errors.New("rates, concurrency, attempts, lookback, provisional, grace and flush bounds must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg *Config) fillDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Lookback, DefaultLookback)
	def(&cfg.Provisional, DefaultProvisional)
	def(&cfg.Grace, DefaultGrace)
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.FlushEvery, DefaultFlushEvery)
	def(&cfg.SummarySettle, DefaultSummarySettle)
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.APIRate == 0 {
		cfg.APIRate = DefaultAPIRate
	}
	if cfg.FlushRows == 0 {
		cfg.FlushRows = DefaultFlushRows
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reader == nil {
		cfg.Reader, _ = cfg.Sink.(StripeReader)
	}
}

// Result reports one push cycle.
type Result struct {
	RunID  string
	DryRun bool
	// From and To bound the hours compared ([From, To)).
	From, To time.Time
	// Actions are what the cycle decided (all of them in a dry run).
	Actions []Action
	// Requests counts requests sent (retries included); Pushed the values Stripe confirmed.
	Requests, Pushed int
	// Late are the late adjustments recorded.
	Late []LateAdjustment
	// Incomplete counts values held until every project of their customer is collected for
	// their hour (HoldIncomplete).
	Incomplete int
	// Pending counts values left unconfirmed (they are resumed next cycle).
	Pending int
	// Failed counts values Stripe refused as they are.
	Failed int
	// Unsendable counts values with nowhere to go in Stripe (no subscription item): newly
	// refused or still held. They do not fail the cycle; an alert watches them.
	Unsendable int
}

// window returns the hours a cycle compares and the instant running totals start.
func (p *Pusher) window(now time.Time) (readFrom, from, to time.Time) {
	return PushWindow(now, p.cfg.Lookback, p.cfg.Provisional, p.cfg.Grace)
}

// PushWindow returns the hours a push compares, [from, to), and readFrom, where running totals
// start. Hours in the provisional window wait for Neon's last revisions, except the last hours of
// a period that has just ended: while its invoice is still open (within grace) they are pushed as
// they stand, since after the grace they could only become late adjustments; a later revision of
// them becomes a late adjustment of the difference only.
func PushWindow(now time.Time, lookback, provisional, grace time.Duration) (readFrom, from, to time.Time) {
	now = now.UTC()
	to = now.Add(-provisional).Truncate(time.Hour)
	if end := plans.PeriodStart(now); to.Before(end) && now.Before(end.Add(grace)) {
		to = end
	}
	from = now.Add(-lookback).Truncate(time.Hour)
	return plans.PeriodStart(from), from, to
}

// desired reads usage and account history and computes what Stripe should hold for hours in
// [from, to). Running totals start at the period's start (readFrom), but only the window is read
// hour by hour: before it, one sum per project and metric is enough for a project whose owner and
// plan stayed the same, and only the few projects whose assignment changed there are read hourly.
// So a push reads a bounded number of rows whatever the day of the month.
func (p *Pusher) desired(ctx context.Context, readFrom, from, to time.Time) ([]Value, error) {
	metrics := plans.BilledMetrics(p.cfg.Catalog)
	usage, err := p.cfg.Store.Usage(ctx, metrics, from, to)
	if err != nil {
		return nil, err
	}
	var before []HourlyUsage
	if readFrom.Before(from) {
		if before, err = p.cfg.Store.UsageTotals(ctx, metrics, readFrom, from); err != nil {
			return nil, err
		}
	}
	tl, err := p.timelines(ctx, projectsOf(usage, before), to)
	if err != nil {
		return nil, err
	}
	constant, changingIDs := SplitBeforeWindow(before, tl, readFrom, from)
	usage = append(usage, constant...)
	if len(changingIDs) > 0 {
		hourly, err := p.cfg.Store.UsageOf(ctx, metrics, changingIDs, readFrom, from)
		if err != nil {
			return nil, err
		}
		usage = append(usage, hourly...)
	}
	return Desired(usage, tl, p.cfg.Catalog, from, to)
}

// incomplete returns, per customer, the first hour of [from, to) not yet final (before
// settled) or collected (from settled on) for all of its projects (IncompleteFrom); nil when
// every project is complete.
func (p *Pusher) incomplete(ctx context.Context, from, to, settled time.Time) (map[string]time.Time, error) {
	lagging, err := p.cfg.Store.Lagging(ctx, to, p.cfg.Provisional)
	if err != nil || len(lagging) == 0 {
		return nil, err
	}
	ids := make([]string, len(lagging))
	for i, l := range lagging {
		ids[i] = l.ProjectID
	}
	tl, err := p.timelines(ctx, ids, to)
	if err != nil {
		return nil, err
	}
	return IncompleteFrom(lagging, tl, from, to, settled), nil
}

// timelines loads the account history of projects up to to.
func (p *Pusher) timelines(ctx context.Context, projects []string, to time.Time) (*accounts.Timelines, error) {
	if len(projects) == 0 {
		return accounts.NewTimelines(nil, p.cfg.DefaultPlan), nil
	}
	return accounts.LoadTimelines(ctx, p.cfg.Accounts, projects, to, p.cfg.DefaultPlan)
}

// projectsOf lists the projects of some usage rows, each once, in first-seen order.
func projectsOf(rows ...[]HourlyUsage) []string {
	seen := map[string]bool{}
	var out []string
	for _, rs := range rows {
		for _, u := range rs {
			if !seen[u.ProjectID] {
				seen[u.ProjectID] = true
				out = append(out, u.ProjectID)
			}
		}
	}
	return out
}

// SplitBeforeWindow sorts the per-project sums of [readFrom, from) into those usable as they are
// (the project's owner and plan did not change in the stretch: the sum is placed at readFrom,
// where the assignment is the stretch's) and the projects whose assignment changed there, which
// must be read hour by hour.
func SplitBeforeWindow(sums []HourlyUsage, tl *accounts.Timelines, readFrom, from time.Time) (constant []HourlyUsage, changing []string) {
	seen := map[string]bool{}
	for _, u := range sums {
		if tl.ChangesWithin(u.ProjectID, readFrom, from) {
			if !seen[u.ProjectID] {
				seen[u.ProjectID] = true
				changing = append(changing, u.ProjectID)
			}
			continue
		}
		u.Hour = readFrom
		constant = append(constant, u)
	}
	return constant, changing
}

func (p *Pusher) rules(now time.Time) Rules {
	fin := p.cfg.Finalized
	if fin == nil {
		fin = FinalizedAfterGrace(now, p.cfg.Grace)
	}
	return Rules{Now: now, MaxAge: p.cfg.MaxAge, Finalized: fin}
}

// Push runs one cycle: compute, plan, then (unless dryRun) record late adjustments and
// intents, send, and record outcomes.
func (p *Pusher) Push(ctx context.Context, dryRun bool) (res Result, err error) {
	start := time.Now()
	now := p.cfg.Now().UTC()
	readFrom, from, to := p.window(now)
	res = Result{RunID: runid.New("push", now), DryRun: dryRun, From: from, To: to}
	if !dryRun {
		defer func() { p.observeRun(start, err) }()
	}
	want, err := p.desired(ctx, readFrom, from, to)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	ledger, err := p.cfg.Store.Ledger(ctx, from, to)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	cut, err := p.incomplete(ctx, from, to, now.Add(-p.cfg.Provisional).Truncate(time.Hour))
	if err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	want, ledger, res.Incomplete = HoldIncomplete(want, ledger, cut)
	res.Actions = Plan(want, ledger, p.rules(now))
	if dryRun {
		return res, nil
	}
	c := p.newCycle(now, res.RunID)
	actions, held := c.release(ctx, res.Actions)
	res.Unsendable += held
	if err := c.apply(ctx, actions, &res); err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	p.observePending(ctx, now, from, to, want, cut)
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.Incomplete.Set(float64(res.Incomplete))
	}
	c.log.Info("billing push", "from", from, "to", to, "actions", len(res.Actions), "requests", res.Requests, "pushed", res.Pushed,
		"late", len(res.Late), "pending", res.Pending, "failed", res.Failed, "unsendable", res.Unsendable, "duration", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// observePending sets the pending and oldest-unpushed gauges from the ledger after a cycle.
func (p *Pusher) observePending(ctx context.Context, now, from, to time.Time, want []Value, cut map[string]time.Time) {
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	ledger, err := p.cfg.Store.Ledger(ctx, from, to)
	if err != nil {
		p.log.Warn("pending values not measured", logkey.Err, err)
		return
	}
	_, ledger, _ = HoldIncomplete(nil, ledger, cut)
	pending := 0
	held := map[SinkKind]int{SinkMeter: 0, SinkUsageRecord: 0}
	var oldest time.Time
	for _, a := range Plan(want, ledger, p.rules(now)) {
		if a.Kind == ActionHold {
			held[a.Sink]++ // watched by its own gauge and alert, not as a backlog
			continue
		}
		if a.Kind == ActionLate {
			continue
		}
		pending++
		if oldest.IsZero() || a.Hour.Before(oldest) {
			oldest = a.Hour
		}
	}
	m.Pending.Set(float64(pending))
	for sink, n := range held {
		m.Unsendable.WithLabelValues(string(sink)).Set(float64(n))
	}
	if oldest.IsZero() {
		m.OldestUnpushed.Set(0)
	} else {
		m.OldestUnpushed.Set(now.Sub(oldest).Seconds())
	}
}
