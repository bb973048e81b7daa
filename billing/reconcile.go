package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/plans"
)

// Bucket is one compared value: an hour of a meter, or a billing period of a usage-record
// price (Stripe summarises usage records per period only).
type Bucket struct {
	CustomerID, Target string
	Sink               SinkKind
	// Start is the hour (meters) or the period's start (usage records).
	Start            time.Time
	Expected, Actual int64
}

// Drift returns Actual − Expected.
func (b Bucket) Drift() int64 { return b.Actual - b.Expected }

// ReconcileResult reports a reconciliation.
type ReconcileResult struct {
	RunID    string
	Trigger  ReconcileTrigger
	From, To time.Time
	// Compared counts buckets compared; Drift lists those that differ, sorted.
	Compared int
	Drift    []Bucket
	// Unsettled counts meter hours left out because they were pushed less than
	// Config.SummarySettle ago (Stripe's summaries may not show them yet).
	Unsettled int
	// Repair is the push that re-sent drifting values (with --repair).
	Repair *Result
}

// Expected returns what Stripe should hold per bucket, from desired values and the ledger:
// an hour recorded as late keeps what Stripe confirmed (its difference is a late adjustment,
// not drift), and so does a held (unsendable) one, which its own alert reports. Usage-record
// hours are summed per period; a sum that would wrap is an *OverflowError.
func Expected(want []Value, ledger []LedgerRow) (map[Bucket]int64, error) {
	out := map[Bucket]int64{}
	kept := map[Key]int64{}
	for _, r := range ledger {
		if r.Status == LedgerLate || r.Status == LedgerUnsendable {
			kept[r.key()] = r.ConfirmedValue
		}
	}
	add := func(k Key, metric string, units int64) error {
		b := bucketOf(k)
		sum, ok := addInt(out[b], units)
		if !ok {
			return &OverflowError{What: "expected value", CustomerID: k.CustomerID, Target: k.Target, Metric: metric, Hour: k.Hour}
		}
		out[b] = sum
		return nil
	}
	for _, v := range want {
		units := v.Units
		if c, ok := kept[v.Key]; ok {
			units = c
			delete(kept, v.Key)
		}
		if err := add(v.Key, v.Metric, units); err != nil {
			return nil, err
		}
	}
	for k, c := range kept {
		if err := add(k, "", c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func bucketOf(k Key) Bucket {
	b := Bucket{CustomerID: k.CustomerID, Target: k.Target, Sink: k.Sink, Start: k.Hour}
	if k.Sink == SinkUsageRecord {
		b.Start = plans.PeriodStart(k.Hour)
	}
	return b
}

// Compare lists the buckets whose actual value differs from the expected one, sorted; a
// difference that would wrap is an *OverflowError (so Bucket.Drift of the result is exact).
func Compare(expected, actual map[Bucket]int64) ([]Bucket, error) {
	keys := map[Bucket]bool{}
	for b := range expected {
		keys[b] = true
	}
	for b := range actual {
		keys[b] = true
	}
	var out []Bucket
	for b := range keys {
		if e, a := expected[b], actual[b]; e != a {
			if _, ok := subInt(a, e); !ok {
				return nil, &OverflowError{What: "drift", CustomerID: b.CustomerID, Target: b.Target, Hour: b.Start}
			}
			b.Expected, b.Actual = e, a
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		return cmp.Or(cmp.Compare(a.CustomerID, b.CustomerID), cmp.Compare(a.Target, b.Target), a.Start.Compare(b.Start))
	})
	return out, nil
}

// reconcileRange is what one reconciliation compares: meter hours in [from, to), and the whole
// usage-record periods [wideFrom, wideTo) the range touches (Stripe summarises those per period).
type reconcileRange struct {
	from, to, wideFrom, wideTo time.Time
}

// reconcileRangeOf truncates [from, to) to hours and stops it, and its widened periods, where
// the provisional window begins.
func (p *Pusher) reconcileRangeOf(now, from, to time.Time) reconcileRange {
	_, _, cutoff := p.window(now)
	r := reconcileRange{from: from.UTC().Truncate(time.Hour), to: to.UTC().Truncate(time.Hour)}
	if r.to.After(cutoff) {
		r.to = cutoff
	}
	r.wideFrom, r.wideTo = plans.PeriodStart(r.from), plans.PeriodEnd(r.to.Add(-time.Hour))
	if r.wideTo.After(cutoff) {
		r.wideTo = cutoff
	}
	return r
}

// Reconcile compares Stripe's summaries with what ClickHouse says Stripe should hold, for
// meter hours in [from, to) and usage-record periods overlapping it, stores the drift and the
// run (billing_drift, billing_reconcile_runs), sets the drift metrics, and with repair re-sends
// the drifting values as new revisions. Hours in the provisional window are left out. Stripe is
// read through Config.Reader. It is the command line's reconciliation (trigger cli); serve runs
// ReconcileScheduled.
func (p *Pusher) Reconcile(ctx context.Context, from, to time.Time, repair bool) (ReconcileResult, error) {
	return p.reconcileAs(ctx, TriggerCLI, from, to, repair)
}

// reconcileAs runs one reconciliation started by trigger and records it, failed or not, once
// its range is valid.
func (p *Pusher) reconcileAs(ctx context.Context, trigger ReconcileTrigger, from, to time.Time, repair bool) (ReconcileResult, error) {
	now := p.cfg.Now().UTC()
	r := p.reconcileRangeOf(now, from, to)
	res := ReconcileResult{RunID: runid.New("reconcile", now), Trigger: trigger, From: r.from, To: r.to}
	if !r.from.Before(r.to) {
		return res, fmt.Errorf("reconcile: empty range %s – %s", r.from.Format(time.RFC3339), r.to.Format(time.RFC3339))
	}
	if p.cfg.Reader == nil {
		return res, errors.New("reconcile: no Stripe reader configured")
	}
	c := p.newCycle(now, res.RunID)
	err := c.reconcile(ctx, r, repair, &res)
	if err != nil {
		err = fmt.Errorf("reconcile %s: %w", res.RunID, err)
	}
	return res, errors.Join(err, c.recordRun(ctx, res, repair, err))
}

// reconcile compares, records the drift and, with repair, re-sends the drifting values.
func (c *cycle) reconcile(ctx context.Context, r reconcileRange, repair bool, res *ReconcileResult) error {
	want, err := c.p.desired(ctx, r.wideFrom, r.wideFrom, r.wideTo)
	if err != nil {
		return err
	}
	ledger, err := c.p.cfg.Store.Ledger(ctx, r.wideFrom, r.wideTo)
	if err != nil {
		return err
	}
	expected, err := Expected(want, ledger)
	if err != nil {
		return err
	}
	for b := range expected {
		if b.Sink == SinkMeter && (b.Start.Before(r.from) || !b.Start.Before(r.to)) {
			delete(expected, b)
		}
	}
	actual, err := c.p.readStripe(ctx, pairsOf(expected, ledger), r)
	if err != nil {
		return err
	}
	res.Unsettled = c.leaveOutUnsettled(ledger, expected, actual)
	res.Compared = len(expected)
	if res.Drift, err = Compare(expected, actual); err != nil {
		return err
	}
	if err := c.storeDrift(ctx, res.Drift); err != nil {
		return err
	}
	if !repair || len(res.Drift) == 0 {
		return nil
	}
	rr, err := c.repair(ctx, *res, want, ledger)
	res.Repair = &rr
	return err
}

// pair is one (customer, target) read back from Stripe.
type pair struct {
	customer, target string
	sink             SinkKind
}

// pairsOf lists every (customer, target) ClickHouse knows of in the range, sorted.
func pairsOf(expected map[Bucket]int64, ledger []LedgerRow) []pair {
	seen := map[pair]bool{}
	for b := range expected {
		seen[pair{b.CustomerID, b.Target, b.Sink}] = true
	}
	for _, r := range ledger {
		seen[pair{r.CustomerID, r.Target, r.Sink}] = true
	}
	out := make([]pair, 0, len(seen))
	for pr := range seen {
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.customer, b.customer), cmp.Compare(a.target, b.target), cmp.Compare(a.sink, b.sink))
	})
	return out
}

// readStripe reads what Stripe holds for each pair, per bucket: meter hours in [from, to),
// usage-record periods starting in [wideFrom, wideTo). Reads share the push's pace.
func (p *Pusher) readStripe(ctx context.Context, pairs []pair, r reconcileRange) (map[Bucket]int64, error) {
	meters, err := p.cfg.Reader.Meters(ctx)
	if err != nil {
		return nil, err
	}
	actual := map[Bucket]int64{}
	for _, pr := range pairs {
		if err := p.apiPacer.Wait(ctx); err != nil {
			return nil, err
		}
		sums, err := p.summaries(ctx, meters, pr, r)
		if errors.Is(err, ErrNoSubscriptionItem) {
			continue // nothing can be in Stripe for it; its held values have their own alert
		}
		if err != nil {
			return nil, err
		}
		for _, s := range sums {
			if pr.sink == SinkUsageRecord && (s.Start.Before(r.wideFrom) || !s.Start.Before(r.wideTo)) {
				continue
			}
			b := Bucket{CustomerID: pr.customer, Target: pr.target, Sink: pr.sink, Start: s.Start}
			sum, ok := addInt(actual[b], s.Value)
			if !ok {
				return nil, &OverflowError{What: "Stripe value", CustomerID: pr.customer, Target: pr.target, Hour: s.Start}
			}
			actual[b] = sum
		}
	}
	return actual, nil
}

// leaveOutUnsettled removes from both sides the meter hours whose newest ledger step is more
// recent than Config.SummarySettle (Stripe may not summarise them yet) and counts them.
func (c *cycle) leaveOutUnsettled(ledger []LedgerRow, expected, actual map[Bucket]int64) int {
	settle := c.p.cfg.SummarySettle
	if settle < 0 {
		return 0
	}
	n := 0
	for _, r := range ledger {
		if r.Sink != SinkMeter || r.RecordedAt.Before(c.now.Add(-settle)) {
			continue
		}
		b := bucketOf(r.key())
		_, inE := expected[b]
		_, inA := actual[b]
		if inE || inA {
			n++
		}
		delete(expected, b)
		delete(actual, b)
	}
	return n
}

// summaries reads one pair's summaries from Stripe.
func (p *Pusher) summaries(ctx context.Context, meters map[string]string, pr pair, r reconcileRange) ([]Summary, error) {
	if pr.sink == SinkUsageRecord {
		return p.cfg.Reader.UsageRecordSummaries(ctx, pr.customer, pr.target)
	}
	id, ok := meters[pr.target]
	if !ok {
		return nil, fmt.Errorf("no active meter for event name %s (run billing setup)", pr.target)
	}
	return p.cfg.Reader.MeterSummaries(ctx, id, pr.customer, r.from, r.to)
}

// storeDrift records the drifting buckets of this reconciliation.
func (c *cycle) storeDrift(ctx context.Context, drift []Bucket) error {
	rows := make([]Drift, len(drift))
	for i, b := range drift {
		rows[i] = Drift{CheckedAt: c.now, RunID: c.runID, CustomerID: b.CustomerID, Target: b.Target, Sink: b.Sink,
			Bucket: b.Start, Expected: b.Expected, Actual: b.Actual, Drift: b.Drift()}
	}
	return c.p.cfg.Store.InsertDrift(ctx, rows)
}

// repair re-sends, as new revisions, the desired value of every hour in a drifting bucket
// (for a usage-record period, every hour of it with a value).
func (c *cycle) repair(ctx context.Context, rec ReconcileResult, want []Value, ledger []LedgerRow) (Result, error) {
	res := Result{RunID: rec.RunID, From: rec.From, To: rec.To}
	drifting := map[Bucket]bool{}
	for _, b := range rec.Drift {
		b.Expected, b.Actual = 0, 0
		drifting[b] = true
	}
	last := map[Key]LedgerRow{}
	for _, r := range ledger {
		last[r.key()] = r
	}
	wantBy := map[Key]Value{}
	for _, v := range want {
		wantBy[v.Key] = v
	}
	for k, r := range last {
		if _, ok := wantBy[k]; !ok {
			wantBy[k] = Value{Key: k, Metric: r.Metric}
		}
	}
	var actions []Action
	rules := c.p.rules(c.now)
	for k, v := range wantBy {
		r, seen := last[k]
		if !drifting[bucketOf(k)] || (seen && r.Status == LedgerLate) {
			continue
		}
		a := Action{Kind: ActionSend, Value: v, Revision: r.Revision + 1, Confirmed: r.ConfirmedValue, Previous: r.Accounted}
		// A final or too old hour is a late adjustment, as in a push: Stripe would not invoice it.
		if reason, late := lateReason(k, rules); late {
			a = a.late(reason)
		}
		a.Identifier = Identifier(k, a.Revision)
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Key.less(actions[j].Key) })
	res.Actions = actions
	err := c.apply(ctx, actions, &res)
	return res, err
}
