package billing

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// Defaults of Config's zero fields.
const (
	DefaultLookback    = 72 * time.Hour
	DefaultProvisional = 2 * time.Hour
	DefaultGrace       = time.Hour
	DefaultRate        = 50.0
	DefaultConcurrency = 16
	DefaultMaxAttempts = 8
	DefaultRetryBase   = 500 * time.Millisecond
	DefaultRetryMax    = 20 * time.Second
	// outcomeBatch caps the outcome rows buffered before a write.
	outcomeBatch = 2000
)

// Config is what a Pusher needs. Sink, Conn, Database and Catalog are required.
type Config struct {
	// Sink sends values; NewStripeSink(client) in production.
	Sink     Sink
	Conn     driver.Conn
	Database string
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
	// Rate is the global requests per second to Stripe (default 50).
	Rate float64
	// Concurrency is how many (customer, target) queues are served at once (default 16).
	Concurrency int
	// MaxAttempts bounds the tries of one value per cycle (default 8).
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff with full jitter.
	RetryBase, RetryMax time.Duration
	Logger              *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pusher pushes one cycle at a time. Only one Pusher may run against a database at once (the
// ledger's revisions assume a single writer); serve runs it after each sweep.
type Pusher struct {
	cfg     Config
	log     *slog.Logger
	limiter *limiter
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Pusher, error) {
	var errs []error
	if cfg.Sink == nil {
		errs = append(errs, errors.New("no Stripe sink"))
	}
	if cfg.Conn == nil {
		errs = append(errs, errors.New("no ClickHouse connection"))
	}
	if !schema.ValidDatabase(cfg.Database) {
		errs = append(errs, fmt.Errorf("database name %q is not valid", cfg.Database))
	}
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("no plan catalog"))
	} else {
		p, err := accounts.DefaultPlan(cfg.Catalog, cfg.DefaultPlan)
		errs = append(errs, err)
		cfg.DefaultPlan = p
	}
	if cfg.Rate < 0 || cfg.Concurrency < 0 || cfg.MaxAttempts < 0 || cfg.Lookback < 0 || cfg.Provisional < 0 || cfg.Grace < 0 {
		errs = append(errs, errors.New("rate, concurrency, attempts, lookback, provisional and grace must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("billing config: %w", err)
	}
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
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pusher{cfg: cfg, log: log.With(keyComponent, "billing"), limiter: newLimiter(cfg.Rate)}, nil
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
	Late []schema.LateAdjustment
	// Pending counts values left unconfirmed (they are resumed next cycle).
	Pending int
	// Failed counts values Stripe refused as they are.
	Failed int
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
	if end := PeriodStart(now); to.Before(end) && now.Before(end.Add(grace)) {
		to = end
	}
	from = now.Add(-lookback).Truncate(time.Hour)
	return PeriodStart(from), from, to
}

// billedMetrics lists every metric some plan bills, sorted.
func billedMetrics(cat *plans.Catalog) []string {
	seen := map[string]bool{}
	for _, p := range cat.Plans {
		for m := range p.Billing {
			seen[m] = true
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// desired reads usage and account history and computes what Stripe should hold for hours in
// [from, to). Running totals start at the period's start (readFrom), but only the window is read
// hour by hour: before it, one sum per project and metric is enough for a project whose owner and
// plan stayed the same, and only the few projects whose assignment changed there are read hourly.
// So a push reads a bounded number of rows whatever the day of the month.
func (p *Pusher) desired(ctx context.Context, readFrom, from, to time.Time) ([]Value, error) {
	metrics := billedMetrics(p.cfg.Catalog)
	usage, err := schema.BillingUsage(ctx, p.cfg.Conn, p.cfg.Database, metrics, from, to)
	if err != nil {
		return nil, err
	}
	var before []schema.HourlyUsage
	if readFrom.Before(from) {
		if before, err = schema.BillingUsageTotals(ctx, p.cfg.Conn, p.cfg.Database, metrics, readFrom, from); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	var projects []string
	for _, u := range append(usage, before...) {
		if !seen[u.ProjectID] {
			seen[u.ProjectID] = true
			projects = append(projects, u.ProjectID)
		}
	}
	var tl *accounts.Timelines
	if len(projects) == 0 {
		tl = accounts.NewTimelines(nil, p.cfg.DefaultPlan)
	} else if tl, err = accounts.LoadTimelines(ctx, p.cfg.Conn, p.cfg.Database, projects, to, p.cfg.DefaultPlan); err != nil {
		return nil, err
	}
	constant, changingIDs := SplitBeforeWindow(before, tl, readFrom, from)
	usage = append(usage, constant...)
	if len(changingIDs) > 0 {
		hourly, err := schema.BillingUsageOf(ctx, p.cfg.Conn, p.cfg.Database, metrics, changingIDs, readFrom, from)
		if err != nil {
			return nil, err
		}
		usage = append(usage, hourly...)
	}
	return Desired(usage, tl, p.cfg.Catalog, from, to), nil
}

// SplitBeforeWindow sorts the per-project sums of [readFrom, from) into those usable as they are
// (the project's owner and plan did not change in the stretch: the sum is placed at readFrom,
// where the assignment is the stretch's) and the projects whose assignment changed there, which
// must be read hour by hour.
func SplitBeforeWindow(sums []schema.HourlyUsage, tl *accounts.Timelines, readFrom, from time.Time) (constant []schema.HourlyUsage, changing []string) {
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
	res = Result{RunID: newRunID(), DryRun: dryRun, From: from, To: to}
	log := p.log.With(keyRunID, res.RunID)
	defer func() {
		if m := p.cfg.Metrics; m != nil && !dryRun {
			result := "success"
			if err != nil {
				result = "error"
			} else {
				m.LastSuccess.SetToCurrentTime()
			}
			m.Runs.WithLabelValues(result).Inc()
			m.Duration.Observe(time.Since(start).Seconds())
		}
	}()
	want, err := p.desired(ctx, readFrom, from, to)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	ledger, err := schema.Ledger(ctx, p.cfg.Conn, p.cfg.Database, from, to)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	res.Actions = Plan(want, ledger, p.rules(now))
	if dryRun {
		return res, nil
	}
	if err := p.apply(ctx, now, res.Actions, &res, log); err != nil {
		return res, fmt.Errorf("push %s: %w", res.RunID, err)
	}
	p.observePending(ctx, now, from, to, want)
	log.Info("billing push", "from", from, "to", to, "actions", len(res.Actions), "requests", res.Requests,
		"pushed", res.Pushed, "late", len(res.Late), "pending", res.Pending, "failed", res.Failed, "duration", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// apply records late rows and intents, then sends every send/resume action.
func (p *Pusher) apply(ctx context.Context, now time.Time, actions []Action, res *Result, log *slog.Logger) error {
	var intents, lateRows []schema.LedgerRow
	var adj []schema.LateAdjustment
	var sends []Action
	for _, a := range actions {
		switch a.Kind {
		case ActionLate:
			lateRows = append(lateRows, p.row(a, schema.LedgerLate, a.Confirmed, Receipt{}, now, res.RunID))
			if a.Reason != "" {
				adj = append(adj, lateAdjustment(a, a.Reason, now, res.RunID))
			}
		case ActionSend:
			intents = append(intents, p.row(a, schema.LedgerIntent, a.Confirmed, Receipt{}, now, res.RunID))
			sends = append(sends, a)
		case ActionResume:
			sends = append(sends, a)
		}
	}
	// Adjustments first: a crash between the two writes re-plans the same late action (the
	// ledger still lacks the late row) and rewrites the same adjustment row.
	if err := p.recordLate(ctx, adj, lateRows, res); err != nil {
		return err
	}
	// Every intent is durable before its request leaves.
	if err := schema.InsertLedger(ctx, p.cfg.Conn, p.cfg.Database, intents); err != nil {
		return fmt.Errorf("record intents: %w", err)
	}
	return p.send(ctx, now, sends, res, log)
}

func (p *Pusher) recordLate(ctx context.Context, adj []schema.LateAdjustment, rows []schema.LedgerRow, res *Result) error {
	if len(adj) > 0 {
		if err := schema.InsertLateAdjustments(ctx, p.cfg.Conn, p.cfg.Database, adj); err != nil {
			return err
		}
	}
	if err := schema.InsertLedger(ctx, p.cfg.Conn, p.cfg.Database, rows); err != nil {
		return fmt.Errorf("record late rows: %w", err)
	}
	res.Late = append(res.Late, adj...)
	if m := p.cfg.Metrics; m != nil {
		for _, a := range adj {
			m.LateAdjustments.WithLabelValues(a.Sink, a.Reason).Inc()
			m.LateUnits.WithLabelValues(a.Sink, a.Reason).Add(float64(abs(a.Amount)))
		}
	}
	return nil
}

func lateAdjustment(a Action, reason string, now time.Time, runID string) schema.LateAdjustment {
	return schema.LateAdjustment{CustomerID: a.CustomerID, Target: a.Target, Hour: a.Hour, Sink: a.Sink, Revision: a.Revision,
		Metric: a.Metric, PeriodStart: PeriodStart(a.Hour), PeriodEnd: PeriodEnd(a.Hour), OldValue: a.Previous, NewValue: a.Units,
		Amount: a.Units - a.Previous, Reason: reason, DetectedAt: now, RunID: runID}
}

func (p *Pusher) row(a Action, status string, confirmed int64, rc Receipt, now time.Time, runID string) schema.LedgerRow {
	v := 2 * uint64(a.Revision)
	if status != schema.LedgerIntent {
		v++
	}
	return schema.LedgerRow{CustomerID: a.CustomerID, Target: a.Target, Hour: a.Hour, Sink: a.Sink, Metric: a.Metric, Value: a.Units,
		ConfirmedValue: confirmed, Revision: a.Revision, Identifier: a.Identifier, Status: status, StripeID: rc.StripeID,
		RequestID: rc.RequestID, HTTPStatus: uint16(rc.Status), RecordedAt: now, RunID: runID, Version: v}
}

// send serves one queue per (customer, target, sink), in hour order, one request at a time
// per queue and Concurrency queues at once. Outcomes are written in batches; a crash before a
// batch is written leaves intents that the next cycle resumes with the same identifiers.
func (p *Pusher) send(ctx context.Context, now time.Time, sends []Action, res *Result, log *slog.Logger) error {
	type qkey struct{ customer, target, sink string }
	queues := map[qkey][]Action{}
	var order []qkey
	for _, a := range sends {
		k := qkey{a.CustomerID, a.Target, a.Sink}
		if _, ok := queues[k]; !ok {
			order = append(order, k)
		}
		queues[k] = append(queues[k], a)
	}
	w := &outcomeWriter{p: p, ctx: ctx}
	var mu sync.Mutex // guards res
	work := make(chan qkey)
	var wg sync.WaitGroup
	for range min(p.cfg.Concurrency, max(len(order), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				for _, a := range queues[k] {
					st := p.sendOne(ctx, now, a, w, res.RunID, log)
					mu.Lock()
					res.Requests += st.requests
					switch st.result {
					case OutcomePushed, OutcomeDuplicate:
						res.Pushed++
					case OutcomeLate:
						res.Late = append(res.Late, st.late...)
					case OutcomeFailed:
						res.Failed++
					default:
						res.Pending++
					}
					mu.Unlock()
					if ctx.Err() != nil {
						return
					}
				}
			}
		}()
	}
	for _, k := range order {
		select {
		case work <- k:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if err := w.flush(); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	return ctx.Err()
}

type sendStatus struct {
	result   string
	requests int
	late     []schema.LateAdjustment
}

// sendOne sends one value until Stripe confirms it, refuses it for good, or attempts run
// out. A 5xx Stripe stores for the key cannot succeed under that key again, so the value
// moves to the next revision (its intent written first). An identifier is never sent with
// another value: only the revision changes.
func (p *Pusher) sendOne(ctx context.Context, now time.Time, a Action, w *outcomeWriter, runID string, log *slog.Logger) sendStatus {
	m := p.cfg.Metrics
	count := func(outcome string) {
		if m != nil {
			m.Pushes.WithLabelValues(a.Sink, outcome).Inc()
		}
	}
	var st sendStatus
	for attempt := 1; ; attempt++ {
		if err := p.limiter.Wait(ctx); err != nil {
			st.result = OutcomeAbandoned
			return st
		}
		st.requests++
		rc, err := p.cfg.Sink.Send(ctx, a)
		if err == nil {
			count(OutcomePushed)
			w.add(p.row(a, schema.LedgerPushed, a.Units, rc, now, runID))
			st.result = OutcomePushed
			return st
		}
		kind, status := classify(err)
		lg := log.With(keyCustomer, a.CustomerID, keyTarget, a.Target, keyHour, a.Hour, "revision", a.Revision, "attempt", attempt)
		switch kind {
		case outDuplicate:
			count(OutcomeDuplicate)
			w.add(p.row(a, schema.LedgerPushed, a.Units, Receipt{StripeID: a.Identifier, Status: status}, now, runID))
			st.result = OutcomeDuplicate
			return st
		case outLate:
			count(OutcomeLate)
			// Stripe refused the hour: older than its 35 days (by our clock too), or in an
			// invoice it has finalized.
			reason := schema.LateFinalized
			if now.Sub(a.Hour) > 35*24*time.Hour {
				reason = schema.LateTooOld
			}
			adj := lateAdjustment(a, reason, now, runID)
			if adj.Amount != 0 {
				st.late = append(st.late, adj)
			}
			late := p.row(a, schema.LedgerLate, a.Confirmed, Receipt{Status: status}, now, runID)
			var discard Result
			if err := p.recordLate(ctx, st.late, []schema.LedgerRow{late}, &discard); err != nil {
				w.fail(err)
			}
			lg.Warn("stripe refused the hour as final; recorded a late adjustment", "err", err)
			st.result = OutcomeLate
			return st
		case outFailed:
			count(OutcomeFailed)
			w.add(p.row(a, schema.LedgerFailed, a.Confirmed, Receipt{Status: status}, now, runID))
			lg.Error("stripe refused the value", "err", err)
			st.result = OutcomeFailed
			return st
		case outNewKey:
			count(OutcomeRekeyed)
			w.add(p.row(a, schema.LedgerFailed, a.Confirmed, Receipt{Status: status}, now, runID))
			a.Revision++
			a.Identifier = Identifier(a.Key, a.Revision)
			if err := schema.InsertLedger(ctx, p.cfg.Conn, p.cfg.Database, []schema.LedgerRow{p.row(a, schema.LedgerIntent, a.Confirmed, Receipt{}, now, runID)}); err != nil {
				w.fail(fmt.Errorf("record intent %s: %w", a.Identifier, err))
				st.result = OutcomeAbandoned
				return st
			}
		default:
			count(OutcomeRetried)
			if status == 429 {
				p.limiter.Pause(p.backoff(attempt))
			}
		}
		if attempt >= p.cfg.MaxAttempts {
			if m != nil {
				m.Pushes.WithLabelValues(a.Sink, OutcomeAbandoned).Inc()
			}
			lg.Warn("giving up on the value for this cycle; it is resumed next cycle", "err", err)
			st.result = OutcomeAbandoned
			return st
		}
		if err := sleep(ctx, p.backoff(attempt)); err != nil {
			st.result = OutcomeAbandoned
			return st
		}
	}
}

// backoff returns a random wait in [0, min(RetryMax, RetryBase·2^(attempt−1))].
func (p *Pusher) backoff(attempt int) time.Duration {
	d := p.cfg.RetryBase << min(attempt-1, 20)
	if d > p.cfg.RetryMax || d <= 0 {
		d = p.cfg.RetryMax
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// outcomeWriter batches outcome rows.
type outcomeWriter struct {
	p    *Pusher
	ctx  context.Context
	mu   sync.Mutex
	rows []schema.LedgerRow
	err  error
}

func (w *outcomeWriter) add(r schema.LedgerRow) {
	w.mu.Lock()
	w.rows = append(w.rows, r)
	full := len(w.rows) >= outcomeBatch
	w.mu.Unlock()
	if full {
		if err := w.flush(); err != nil {
			w.fail(err)
		}
	}
}

func (w *outcomeWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *outcomeWriter) flush() error {
	w.mu.Lock()
	rows := w.rows
	w.rows = nil
	w.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	// Outcomes are written even when the cycle's context ended: they record what Stripe did.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	if err := schema.InsertLedger(ctx, w.p.cfg.Conn, w.p.cfg.Database, rows); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	return nil
}

// observePending sets the pending and oldest-unpushed gauges from the ledger after a cycle.
func (p *Pusher) observePending(ctx context.Context, now, from, to time.Time, want []Value) {
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	ledger, err := schema.Ledger(ctx, p.cfg.Conn, p.cfg.Database, from, to)
	if err != nil {
		p.log.Warn("pending values not measured", "err", err)
		return
	}
	actions := Plan(want, ledger, p.rules(now))
	pending := 0
	var oldest time.Time
	for _, a := range actions {
		if a.Kind == ActionLate {
			continue
		}
		pending++
		if oldest.IsZero() || a.Hour.Before(oldest) {
			oldest = a.Hour
		}
	}
	m.Pending.Set(float64(pending))
	if oldest.IsZero() {
		m.OldestUnpushed.Set(0)
	} else {
		m.OldestUnpushed.Set(now.Sub(oldest).Seconds())
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func newRunID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
