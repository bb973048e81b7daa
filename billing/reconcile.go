package billing

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/schema"
)

// Bucket is one compared value: an hour of a meter, or a billing period of a usage-record
// price (Stripe summarises usage records per period only).
type Bucket struct {
	CustomerID, Target, Sink string
	// Start is the hour (meters) or the period's start (usage records).
	Start            time.Time
	Expected, Actual int64
}

// Drift returns Actual − Expected.
func (b Bucket) Drift() int64 { return b.Actual - b.Expected }

// ReconcileResult reports a reconciliation.
type ReconcileResult struct {
	RunID    string
	From, To time.Time
	// Compared counts buckets compared; Drift lists those that differ, sorted.
	Compared int
	Drift    []Bucket
	// Repair is the push that re-sent drifting values (with --repair).
	Repair *Result
}

// Expected returns what Stripe should hold per bucket, from desired values and the ledger:
// an hour recorded as late keeps what Stripe confirmed (its difference is a late adjustment,
// not drift). Usage-record hours are summed per period.
func Expected(want []Value, ledger []schema.LedgerRow) map[Bucket]int64 {
	out := map[Bucket]int64{}
	late := map[Key]int64{}
	for _, r := range ledger {
		if r.Status == schema.LedgerLate {
			late[Key{CustomerID: r.CustomerID, Target: r.Target, Sink: r.Sink, Hour: r.Hour.UTC()}] = r.ConfirmedValue
		}
	}
	for _, v := range want {
		units := v.Units
		if c, ok := late[v.Key]; ok {
			units = c
			delete(late, v.Key)
		}
		out[bucketOf(v.Key)] += units
	}
	for k, c := range late {
		out[bucketOf(k)] += c
	}
	return out
}

func bucketOf(k Key) Bucket {
	b := Bucket{CustomerID: k.CustomerID, Target: k.Target, Sink: k.Sink, Start: k.Hour}
	if k.Sink == schema.SinkUsageRecord {
		b.Start = PeriodStart(k.Hour)
	}
	return b
}

// Compare lists the buckets whose actual value differs from the expected one, sorted.
func Compare(expected, actual map[Bucket]int64) []Bucket {
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
			b.Expected, b.Actual = e, a
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CustomerID != b.CustomerID {
			return a.CustomerID < b.CustomerID
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Start.Before(b.Start)
	})
	return out
}

// Reconcile compares Stripe's summaries with what ClickHouse says Stripe should hold, for
// meter hours in [from, to) and usage-record periods overlapping it, stores the drift, sets
// the drift metrics, and with repair re-sends the drifting values as new revisions. Hours in
// the provisional window are left out.
func (p *Pusher) Reconcile(ctx context.Context, sc *client.API, from, to time.Time, repair bool) (ReconcileResult, error) {
	now := p.cfg.Now().UTC()
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	if _, _, cutoff := p.window(now); to.After(cutoff) {
		to = cutoff
	}
	res := ReconcileResult{RunID: newRunID(), From: from, To: to}
	if !from.Before(to) {
		return res, fmt.Errorf("reconcile: empty range %s – %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	// Usage records compare whole periods: widen to the periods the range touches.
	wideFrom, wideTo := PeriodStart(from), PeriodEnd(to.Add(-time.Hour))
	if _, _, cutoff := p.window(now); wideTo.After(cutoff) {
		wideTo = cutoff
	}
	want, err := p.desired(ctx, wideFrom, wideFrom, wideTo)
	if err != nil {
		return res, fmt.Errorf("reconcile %s: %w", res.RunID, err)
	}
	ledger, err := schema.Ledger(ctx, p.cfg.Conn, p.cfg.Database, wideFrom, wideTo)
	if err != nil {
		return res, fmt.Errorf("reconcile %s: %w", res.RunID, err)
	}
	expected := Expected(want, ledger)
	for b := range expected {
		if b.Sink == schema.SinkMeter && (b.Start.Before(from) || !b.Start.Before(to)) {
			delete(expected, b)
		}
	}
	// Every (customer, target) ClickHouse knows of in the range is read back from Stripe.
	type pair struct{ customer, target, sink string }
	pairs := map[pair]bool{}
	for b := range expected {
		pairs[pair{b.CustomerID, b.Target, b.Sink}] = true
	}
	for _, r := range ledger {
		pairs[pair{r.CustomerID, r.Target, r.Sink}] = true
	}
	meters, err := Meters(ctx, sc)
	if err != nil {
		return res, fmt.Errorf("reconcile %s: %w", res.RunID, err)
	}
	sink := NewStripeSink(sc)
	actual := map[Bucket]int64{}
	for pr := range pairs {
		if err := p.limiter.Wait(ctx); err != nil {
			return res, err
		}
		switch pr.sink {
		case schema.SinkMeter:
			id, ok := meters[pr.target]
			if !ok {
				return res, fmt.Errorf("reconcile %s: no active meter for event name %s (run billing setup)", res.RunID, pr.target)
			}
			lp := &stripe.BillingMeterEventSummaryListParams{ID: stripe.String(id), Customer: stripe.String(pr.customer),
				StartTime: stripe.Int64(from.Unix()), EndTime: stripe.Int64(to.Unix()), ValueGroupingWindow: stripe.String("hour")}
			lp.Context = ctx
			lp.Limit = stripe.Int64(100)
			it := sc.BillingMeterEventSummaries.List(lp)
			for it.Next() {
				s := it.BillingMeterEventSummary()
				actual[Bucket{CustomerID: pr.customer, Target: pr.target, Sink: pr.sink, Start: time.Unix(s.StartTime, 0).UTC()}] += int64(s.AggregatedValue)
			}
			if err := it.Err(); err != nil {
				return res, fmt.Errorf("reconcile %s: summaries of meter %s customer %s: %w", res.RunID, pr.target, pr.customer, err)
			}
		case schema.SinkUsageRecord:
			item, err := sink.Item(ctx, pr.customer, pr.target)
			if err != nil {
				return res, fmt.Errorf("reconcile %s: %w", res.RunID, err)
			}
			lp := &stripe.UsageRecordSummaryListParams{SubscriptionItem: stripe.String(item)}
			lp.Context = ctx
			lp.Limit = stripe.Int64(100)
			it := sc.UsageRecordSummaries.List(lp)
			for it.Next() {
				s := it.UsageRecordSummary()
				if s.Period == nil {
					continue
				}
				start := time.Unix(s.Period.Start, 0).UTC()
				if start.Before(wideFrom) || !start.Before(wideTo) {
					continue
				}
				actual[Bucket{CustomerID: pr.customer, Target: pr.target, Sink: pr.sink, Start: start}] += s.TotalUsage
			}
			if err := it.Err(); err != nil {
				return res, fmt.Errorf("reconcile %s: usage record summaries of %s: %w", res.RunID, item, err)
			}
		}
	}
	res.Compared = len(expected)
	res.Drift = Compare(expected, actual)
	rows := make([]schema.Drift, len(res.Drift))
	for i, b := range res.Drift {
		rows[i] = schema.Drift{CheckedAt: now, RunID: res.RunID, CustomerID: b.CustomerID, Target: b.Target, Sink: b.Sink,
			Bucket: b.Start, Expected: b.Expected, Actual: b.Actual, Drift: b.Drift()}
	}
	if err := schema.InsertDrift(ctx, p.cfg.Conn, p.cfg.Database, rows); err != nil {
		return res, fmt.Errorf("reconcile %s: %w", res.RunID, err)
	}
	if m := p.cfg.Metrics; m != nil {
		for _, s := range []string{schema.SinkMeter, schema.SinkUsageRecord} {
			n, units := 0, int64(0)
			for _, b := range res.Drift {
				if b.Sink == s {
					n++
					units += abs(b.Drift())
				}
			}
			m.DriftValues.WithLabelValues(s).Set(float64(n))
			m.DriftUnits.WithLabelValues(s).Set(float64(units))
		}
	}
	if repair && len(res.Drift) > 0 {
		r, err := p.repair(ctx, now, res, want, ledger)
		res.Repair = &r
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// repair re-sends, as new revisions, the desired value of every hour in a drifting bucket
// (for a usage-record period, every hour of it with a value).
func (p *Pusher) repair(ctx context.Context, now time.Time, rec ReconcileResult, want []Value, ledger []schema.LedgerRow) (Result, error) {
	res := Result{RunID: rec.RunID, From: rec.From, To: rec.To}
	drifting := map[Bucket]bool{}
	for _, b := range rec.Drift {
		b.Expected, b.Actual = 0, 0
		drifting[b] = true
	}
	last := map[Key]schema.LedgerRow{}
	for _, r := range ledger {
		last[Key{CustomerID: r.CustomerID, Target: r.Target, Sink: r.Sink, Hour: r.Hour.UTC()}] = r
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
	rules := p.rules(now)
	for k, v := range wantBy {
		if !drifting[bucketOf(k)] {
			continue
		}
		r, seen := last[k]
		if seen && r.Status == schema.LedgerLate {
			continue
		}
		a := Action{Kind: ActionSend, Value: v, Revision: r.Revision + 1, Confirmed: r.ConfirmedValue, Previous: r.Accounted}
		// A final or too old hour is a late adjustment, as in a push: Stripe would not invoice it.
		if reason := lateReason(k, rules); reason != "" {
			a.Kind, a.Reason = ActionLate, reason
			if a.Previous == v.Units {
				a.Reason = ""
			}
		}
		a.Identifier = Identifier(k, a.Revision)
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Key.less(actions[j].Key) })
	res.Actions = actions
	err := p.apply(ctx, now, actions, &res, p.log.With(keyRunID, rec.RunID))
	return res, err
}
