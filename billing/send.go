package billing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/retry"
	"github.com/neonmeter/neonmeter/plans"
)

// tooOldForStripe is how old an hour Stripe refuses (meter events: 35 days).
const tooOldForStripe = 35 * 24 * time.Hour

// cycle is one run's writing context: its clock reading, run id and log, shared by the steps
// that record and send values.
type cycle struct {
	p     *Pusher
	now   time.Time
	runID string
	log   *slog.Logger
	// out batches the outcome rows of the cycle's sends.
	out *outcomeWriter
}

func (p *Pusher) newCycle(now time.Time, runID string) *cycle {
	return &cycle{p: p, now: now, runID: runID, log: p.log.With(logkey.RunID, runID)}
}

// row returns the ledger row recording step status of a, with what Stripe confirmed and its
// receipt (zero when none).
func (c *cycle) row(a Action, status LedgerStatus, confirmed int64, rc Receipt) LedgerRow {
	v := 2 * uint64(a.Revision)
	if status != LedgerIntent {
		v++
	}
	return LedgerRow{CustomerID: a.CustomerID, Target: a.Target, Hour: a.Hour, Sink: a.Sink, Metric: a.Metric, Value: a.Units,
		ConfirmedValue: confirmed, Revision: a.Revision, Identifier: a.Identifier, Status: status, StripeID: rc.StripeID,
		RequestID: rc.RequestID, HTTPStatus: uint16(rc.Status), RecordedAt: c.now, RunID: c.runID, Version: v,
		Accounted: accountedAfter(a, status)}
}

// accountedAfter is what Stripe plus late adjustments account for once step status of a is
// recorded: a's value when Stripe took it or it became a late adjustment, else the base a
// carries. Each row stores it, since ledger merges keep only the newest row of a key.
func accountedAfter(a Action, status LedgerStatus) int64 {
	if status == LedgerPushed || status == LedgerLate {
		return a.Units
	}
	return a.Previous
}

// lateAdjustment returns the adjustment finance settles for a late action; an amount that
// would wrap is an *OverflowError.
func (c *cycle) lateAdjustment(a Action, reason LateReason) (LateAdjustment, error) {
	amount, ok := subInt(a.Units, a.Previous)
	if !ok {
		return LateAdjustment{}, &OverflowError{What: "late adjustment", CustomerID: a.CustomerID, Target: a.Target, Metric: a.Metric, Hour: a.Hour}
	}
	return LateAdjustment{CustomerID: a.CustomerID, Target: a.Target, Hour: a.Hour, Sink: a.Sink, Revision: a.Revision,
		Metric: a.Metric, PeriodStart: plans.PeriodStart(a.Hour), PeriodEnd: plans.PeriodEnd(a.Hour), OldValue: a.Previous,
		NewValue: a.Units, Amount: amount, Reason: reason, DetectedAt: c.now, RunID: c.runID}, nil
}

// apply records late rows and intents, then sends every send/resume action.
func (c *cycle) apply(ctx context.Context, actions []Action, res *Result) error {
	var intents, lateRows []LedgerRow
	var adj []LateAdjustment
	var sends []Action
	for _, a := range actions {
		switch a.Kind {
		case ActionLate:
			lateRows = append(lateRows, c.row(a, LedgerLate, a.Confirmed, Receipt{}))
			if a.Reason != "" {
				l, err := c.lateAdjustment(a, a.Reason)
				if err != nil {
					return err
				}
				adj = append(adj, l)
			}
		case ActionSend:
			intents = append(intents, c.row(a, LedgerIntent, a.Confirmed, Receipt{}))
			sends = append(sends, a)
		case ActionResume:
			sends = append(sends, a)
		}
	}
	// Adjustments first: a crash between the two writes re-plans the same late action (the
	// ledger still lacks the late row) and rewrites the same adjustment row.
	if err := c.recordLate(ctx, adj, lateRows); err != nil {
		return err
	}
	res.Late = append(res.Late, adj...)
	// Every intent is durable before its request leaves.
	if err := c.p.cfg.Store.InsertLedger(ctx, intents); err != nil {
		return fmt.Errorf("record intents: %w", err)
	}
	return c.send(ctx, sends, res)
}

// recordLate writes late adjustments, then the ledger's late rows, and counts them.
func (c *cycle) recordLate(ctx context.Context, adj []LateAdjustment, rows []LedgerRow) error {
	if err := c.p.cfg.Store.InsertLateAdjustments(ctx, adj); err != nil {
		return err
	}
	if err := c.p.cfg.Store.InsertLedger(ctx, rows); err != nil {
		return fmt.Errorf("record late rows: %w", err)
	}
	c.p.cfg.Metrics.countLate(adj)
	return nil
}

// queueKey is one serial queue: a customer's target through one sink.
type queueKey struct {
	customer, target string
	sink             SinkKind
}

// send serves one queue per (customer, target, sink), in hour order, one request at a time
// per queue and Concurrency queues at once. Outcomes are written in batches of FlushRows and
// at least every FlushEvery; a crash before a batch is written leaves intents that the next
// cycle resumes with the same identifiers, so a kill replays at most that much work.
func (c *cycle) send(ctx context.Context, sends []Action, res *Result) error {
	queues := map[queueKey][]Action{}
	var order []queueKey
	for _, a := range sends {
		k := queueKey{a.CustomerID, a.Target, a.Sink}
		if _, ok := queues[k]; !ok {
			order = append(order, k)
		}
		queues[k] = append(queues[k], a)
	}
	w := &outcomeWriter{store: c.p.cfg.Store, ctx: ctx, batch: c.p.cfg.FlushRows}
	c.out = w
	stop := w.flushEvery(c.p.cfg.FlushEvery)
	var mu sync.Mutex // guards res
	work := make(chan queueKey)
	var wg sync.WaitGroup
	for range min(c.p.cfg.Concurrency, max(len(order), 1)) {
		wg.Go(func() {
			for k := range work {
				for _, a := range queues[k] {
					st := c.sendOne(ctx, a)
					mu.Lock()
					res.add(st)
					mu.Unlock()
					if ctx.Err() != nil {
						return
					}
				}
			}
		})
	}
	feed(ctx, work, order)
	wg.Wait()
	stop()
	if err := w.flush(); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	return context.Cause(ctx) // why the cycle was stopped (a lost lease says so), not only "canceled"
}

// feed hands the queues to the workers until ctx ends, then closes work.
func feed(ctx context.Context, work chan<- queueKey, order []queueKey) {
	defer close(work)
	for _, k := range order {
		select {
		case work <- k:
		case <-ctx.Done():
			return
		}
	}
}

// sent is what became of one value.
type sent struct {
	outcome  Outcome
	requests int
	late     []LateAdjustment
}

// add counts one value's fate in the cycle's result.
func (r *Result) add(s sent) {
	r.Requests += s.requests
	switch s.outcome {
	case OutcomePushed, OutcomeDuplicate:
		r.Pushed++
	case OutcomeLate:
		r.Late = append(r.Late, s.late...)
	case OutcomeFailed:
		r.Failed++
	case OutcomeUnsendable:
		r.Unsendable++
	default:
		r.Pending++
	}
}

// sendOne sends one value until Stripe confirms it, refuses it for good, or attempts run
// out. A 5xx Stripe stores for the key cannot succeed under that key again, so the value
// moves to the next revision (its intent written first). An identifier is never sent with
// another value: only the revision changes.
func (c *cycle) sendOne(ctx context.Context, a Action) sent {
	var s sent
	for attempt := 1; ; attempt++ {
		if err := c.p.pacer(a.Sink).Wait(ctx); err != nil {
			s.outcome = OutcomeAbandoned
			return s
		}
		s.requests++
		rc, err := c.p.cfg.Sink.Send(ctx, a)
		if err == nil {
			c.p.cfg.Metrics.countPush(a.Sink, OutcomePushed)
			c.out.add(c.row(a, LedgerPushed, a.Units, rc))
			s.outcome = OutcomePushed
			return s
		}
		kind, status := classify(err)
		lg := c.log.With(logkey.CustomerID, a.CustomerID, logkey.Target, a.Target, logkey.Hour, a.Hour, "revision", a.Revision, logkey.Attempt, attempt)
		if kind != outRetry && kind != outNewKey {
			s.outcome, s.late = c.settle(ctx, a, refusal{kind, status, err}, lg)
			return s
		}
		if kind == outNewKey {
			next, werr := c.rekey(ctx, a, status)
			if werr != nil {
				c.out.fail(werr)
				s.outcome = OutcomeAbandoned
				return s
			}
			a = next
		} else {
			c.p.cfg.Metrics.countPush(a.Sink, OutcomeRetried)
			if status == http.StatusTooManyRequests {
				c.p.pacer(a.Sink).Pause(c.p.retry.Delay(attempt)) // every worker backs off, not only this one
			}
		}
		if attempt >= c.p.cfg.MaxAttempts {
			c.p.cfg.Metrics.countPush(a.Sink, OutcomeAbandoned)
			lg.Warn("giving up on the value for this cycle; it is resumed next cycle", logkey.Err, err)
			s.outcome = OutcomeAbandoned
			return s
		}
		if err := retry.Sleep(ctx, c.p.retry.Delay(attempt)); err != nil {
			s.outcome = OutcomeAbandoned
			return s
		}
	}
}

// refusal is a failed send: what it means, Stripe's status and the error.
type refusal struct {
	kind   failure
	status int
	err    error
}

// settle records a failed send that another attempt with the same identifier cannot change:
// Stripe already holds the value, can no longer take the hour, or refuses the value as it is.
func (c *cycle) settle(ctx context.Context, a Action, r refusal, lg *slog.Logger) (Outcome, []LateAdjustment) {
	switch r.kind {
	case outDuplicate:
		c.p.cfg.Metrics.countPush(a.Sink, OutcomeDuplicate)
		c.out.add(c.row(a, LedgerPushed, a.Units, Receipt{StripeID: a.Identifier, Status: r.status}))
		return OutcomeDuplicate, nil
	case outLate:
		c.p.cfg.Metrics.countPush(a.Sink, OutcomeLate)
		adj, err := c.refusedAsLate(ctx, a, r.status)
		if err != nil {
			c.out.fail(err)
		}
		lg.Warn("stripe refused the hour as final; recorded a late adjustment", logkey.Err, r.err)
		return OutcomeLate, adj
	case outUnsendable:
		c.p.cfg.Metrics.countPush(a.Sink, OutcomeUnsendable)
		c.out.add(c.row(a, LedgerUnsendable, a.Confirmed, Receipt{Status: r.status}))
		lg.Warn("value held: it has nowhere to go in Stripe until the customer's subscription changes", logkey.Err, r.err)
		return OutcomeUnsendable, nil
	}
	c.p.cfg.Metrics.countPush(a.Sink, OutcomeFailed)
	c.out.add(c.row(a, LedgerFailed, a.Confirmed, Receipt{Status: r.status}))
	lg.Error("stripe refused the value", logkey.Err, r.err)
	return OutcomeFailed, nil
}

// refusedAsLate records Stripe's refusal of the hour (older than its 35 days by our clock too,
// or in an invoice it has finalized) as a late row and, when the value changes, an adjustment.
func (c *cycle) refusedAsLate(ctx context.Context, a Action, status int) ([]LateAdjustment, error) {
	reason := LateFinalized
	if c.now.Sub(a.Hour) > tooOldForStripe {
		reason = LateTooOld
	}
	var adj []LateAdjustment
	l, err := c.lateAdjustment(a, reason)
	if err != nil {
		return nil, err
	}
	if l.Amount != 0 {
		adj = append(adj, l)
	}
	late := c.row(a, LedgerLate, a.Confirmed, Receipt{Status: status})
	return adj, c.recordLate(ctx, adj, []LedgerRow{late})
}

// rekey records that Stripe stored a 5xx for a's key, and returns a as the next revision, its
// intent written first.
func (c *cycle) rekey(ctx context.Context, a Action, status int) (Action, error) {
	c.p.cfg.Metrics.countPush(a.Sink, OutcomeRekeyed)
	c.out.add(c.row(a, LedgerFailed, a.Confirmed, Receipt{Status: status}))
	a.Revision++
	a.Identifier = Identifier(a.Key, a.Revision)
	if err := c.p.cfg.Store.InsertLedger(ctx, []LedgerRow{c.row(a, LedgerIntent, a.Confirmed, Receipt{})}); err != nil {
		return a, fmt.Errorf("record intent %s: %w", a.Identifier, err)
	}
	return a, nil
}

// outcomeWriter batches outcome rows: a batch is written when it holds batch rows, and by
// flushEvery's ticker.
type outcomeWriter struct {
	store Store
	ctx   context.Context
	batch int
	mu    sync.Mutex
	rows  []LedgerRow
	err   error
}

func (w *outcomeWriter) add(r LedgerRow) {
	w.mu.Lock()
	w.rows = append(w.rows, r)
	full := len(w.rows) >= w.batch
	w.mu.Unlock()
	if full {
		if err := w.flush(); err != nil {
			w.fail(err)
		}
	}
}

// flushEvery writes the buffered rows every d until stop is called: outcomes of a slow cycle
// (a paced or backing-off one) are durable within d, not only when a batch fills.
func (w *outcomeWriter) flushEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := w.flush(); err != nil {
					w.fail(err)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// fail keeps the cycle's first write error, returned when the cycle ends.
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
	if err := w.store.InsertLedger(ctx, rows); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	return nil
}
