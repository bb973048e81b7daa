package billing

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/plans"
)

// Key identifies one pushed value: a customer's target (meter event name or price id) in one
// hour through one sink.
type Key struct {
	CustomerID string
	Target     string
	Sink       SinkKind
	Hour       time.Time
}

func (k Key) less(o Key) bool {
	if k.CustomerID != o.CustomerID {
		return k.CustomerID < o.CustomerID
	}
	if k.Target != o.Target {
		return k.Target < o.Target
	}
	if k.Sink != o.Sink {
		return k.Sink < o.Sink
	}
	return k.Hour.Before(o.Hour)
}

// Value is the whole billing units a key should hold in Stripe.
type Value struct {
	Key
	Metric string
	Units  int64
}

// Identifier derives the meter event identifier (and Idempotency-Key) of one revision of a
// key. It is deterministic, so a restart resends the same string, and under Stripe's
// 100-character limit.
func Identifier(k Key, revision uint32) string {
	h := sha256.New()
	for _, s := range []string{k.CustomerID, k.Target, string(k.Sink), strconv.FormatInt(k.Hour.Unix(), 10), strconv.FormatUint(uint64(revision), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "nm1_" + hex.EncodeToString(h.Sum(nil))[:40]
}

// series is one running total: a customer's usage of one metric billed to one target with one
// conversion, within one billing period.
type series struct {
	customer, target, metric string
	sink                     SinkKind
	billing                  plans.Billing
	period                   int64
}

// Desired returns the value every key should hold for hours in [from, to), sorted by key.
// usage must hold every non-zero hour from plans.PeriodStart(from) on, so that running totals
// start at the period's start; hours before from only feed those totals, so a stretch of them
// whose owner and plan did not change may come as one row (its sum, at the stretch's first
// hour). Projects nobody owns, and metrics the plan in force does not bill, are not pushed.
// Keys whose value is 0 are included only when some usage maps to them (a key without usage
// simply has no value). Every sum is checked: a total beyond what billing can hold is an
// *OverflowError naming the customer, target, metric and hour, never a wrapped value.
func Desired(usage []HourlyUsage, tl *accounts.Timelines, cat *plans.Catalog, from, to time.Time) ([]Value, error) {
	raw, err := seriesOf(usage, tl, cat, to)
	if err != nil {
		return nil, err
	}
	out := map[Key]*Value{}
	for _, s := range sortedSeries(raw) {
		if err := s.addUnits(out, raw[s], from); err != nil {
			return nil, err
		}
	}
	vals := make([]Value, 0, len(out))
	for _, v := range out {
		vals = append(vals, *v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i].Key.less(vals[j].Key) })
	return vals, nil
}

// sortedSeries orders the series, so that the first error reported does not depend on map order.
func sortedSeries(raw map[series]map[int64]uint64) []series {
	out := make([]series, 0, len(raw))
	for s := range raw {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b series) int {
		return cmp.Or(cmp.Compare(a.customer, b.customer), cmp.Compare(a.target, b.target),
			cmp.Compare(a.metric, b.metric), cmp.Compare(a.period, b.period))
	})
	return out
}

// seriesOf groups the raw usage before to into running series: per series, the raw sum of
// each hour (Unix seconds).
func seriesOf(usage []HourlyUsage, tl *accounts.Timelines, cat *plans.Catalog, to time.Time) (map[series]map[int64]uint64, error) {
	raw := map[series]map[int64]uint64{}
	for _, u := range usage {
		if u.Value == 0 || !u.Hour.Before(to) {
			continue
		}
		s, billed := seriesFor(u, tl, cat)
		if !billed {
			continue
		}
		if raw[s] == nil {
			raw[s] = map[int64]uint64{}
		}
		sum, ok := addRaw(raw[s][u.Hour.Unix()], u.Value)
		if !ok {
			return nil, &OverflowError{What: "hourly usage", CustomerID: s.customer, Target: s.target, Metric: u.Metric, ProjectID: u.ProjectID, Hour: u.Hour}
		}
		raw[s][u.Hour.Unix()] = sum
	}
	return raw, nil
}

// seriesFor returns the series a usage row feeds: its owner at that hour, the plan in force
// and how that plan bills the metric. billed is false when nobody owns the project or the
// plan does not bill the metric.
func seriesFor(u HourlyUsage, tl *accounts.Timelines, cat *plans.Catalog) (s series, billed bool) {
	a := tl.At(u.ProjectID, u.Hour)
	if !a.Mapped() {
		return series{}, false
	}
	p, ok := cat.Plan(a.Plan)
	if !ok {
		return series{}, false
	}
	b, ok := p.BillingFor(u.Metric)
	if !ok {
		return series{}, false
	}
	s = series{customer: a.CustomerID, metric: u.Metric, billing: b, period: plans.PeriodStart(u.Hour).Unix()}
	s.target, s.sink = b.MeterEventName, SinkMeter
	if b.PriceID != "" {
		s.target, s.sink = b.PriceID, SinkUsageRecord
	}
	return s, true
}

// addUnits walks the series' hours in order, converting each with the running total, and adds
// the units of the hours from on to out (several series may share a key).
func (s series) addUnits(out map[Key]*Value, hours map[int64]uint64, from time.Time) error {
	hs := make([]int64, 0, len(hours))
	for h := range hours {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	var cum uint64
	for _, h := range hs {
		t := time.Unix(h, 0).UTC()
		next, ok := addRaw(cum, hours[h])
		if !ok {
			return &OverflowError{What: "running total", CustomerID: s.customer, Target: s.target, Metric: s.metric, Hour: t}
		}
		// Both totals are at most math.MaxInt64, so their units and the delta fit an int64.
		units := s.billing.Delta(cum, next)
		cum = next
		if t.Before(from) {
			continue
		}
		k := Key{CustomerID: s.customer, Target: s.target, Sink: s.sink, Hour: t}
		v := out[k]
		if v == nil {
			out[k] = &Value{Key: k, Metric: s.metric, Units: units}
			continue
		}
		if v.Units, ok = addInt(v.Units, units); !ok {
			return &OverflowError{What: "value", CustomerID: s.customer, Target: s.target, Metric: s.metric, Hour: t}
		}
	}
	return nil
}

// ActionKind says what Plan decided for a key.
type ActionKind string

const (
	// ActionSend sends a new revision: its intent must be written before the call.
	ActionSend ActionKind = "send"
	// ActionResume resends an intent already in the ledger, same identifier and value.
	ActionResume ActionKind = "resume"
	// ActionLate records a late adjustment: Stripe can no longer take the hour.
	ActionLate ActionKind = "late"
	// ActionHold keeps a value Stripe has nowhere to put (ledger status unsendable): it is sent,
	// as this new revision, only once the sink finds somewhere to send it (Checker).
	ActionHold ActionKind = "hold"
)

// Action is one thing to do for one key.
type Action struct {
	Kind ActionKind
	Value
	Revision   uint32
	Identifier string
	// Confirmed is what Stripe last confirmed for the key (0 if nothing).
	Confirmed int64
	// Previous is what Stripe plus earlier late adjustments account for: the base of a late
	// adjustment's amount.
	Previous int64
	// Reason is the late adjustment's reason; empty when the late step needs no adjustment
	// (Stripe already holds the value).
	Reason LateReason
}

// Rules are the limits Plan applies.
type Rules struct {
	// Now is the current time.
	Now time.Time
	// MaxAge: hours older than Now − MaxAge are too old for Stripe (35 days less a margin).
	MaxAge time.Duration
	// Finalized reports whether the customer's invoice holding hour is finalized; nil means
	// never.
	Finalized func(customerID string, hour time.Time) bool
}

// DefaultMaxAge is how old an hour may be to be pushed: Stripe's 35 days less one hour, so a
// request queued at the edge is not refused on arrival.
const DefaultMaxAge = 35*24*time.Hour - time.Hour

// Plan compares desired values with the ledger's latest row of each key and returns what to
// do, sorted by key. Keys the ledger holds but desired lacks are taken as 0 (a revision to
// zero). A pending intent whose value still holds is resumed as it is; any other change gets
// the next revision. Nothing is returned for a key Stripe already holds.
func Plan(desired []Value, ledger []LedgerRow, r Rules) []Action {
	want := make(map[Key]Value, len(desired))
	for _, v := range desired {
		want[v.Key] = v
	}
	have := make(map[Key]LedgerRow, len(ledger))
	for _, row := range ledger {
		have[row.key()] = row
	}
	for k, row := range have {
		if _, ok := want[k]; !ok {
			want[k] = Value{Key: k, Metric: row.Metric}
		}
	}
	var out []Action
	for k, v := range want {
		row, seen := have[k]
		a, ok := nextStep(v, row, seen)
		if !ok {
			continue
		}
		if reason, late := lateReason(k, r); late {
			a = a.late(reason)
		}
		if a.Identifier == "" {
			a.Identifier = Identifier(k, a.Revision)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.less(out[j].Key) })
	return out
}

// nextStep decides, from the key's latest ledger row (if seen), whether its desired value v
// needs a request: ok is false when there is nothing to do.
func nextStep(v Value, row LedgerRow, seen bool) (a Action, ok bool) {
	a = Action{Value: v}
	settled := row.Status == LedgerPushed || row.Status == LedgerLate
	switch {
	case !seen:
		a.Kind, a.Revision = ActionSend, 1
		return a, v.Units != 0
	case row.Status == LedgerIntent && row.Value == v.Units:
		a.Kind, a.Revision, a.Identifier, a.Confirmed = ActionResume, row.Revision, row.Identifier, row.ConfirmedValue
		a.Previous = row.Accounted
		return a, true
	case settled && row.Value == v.Units:
		return a, false
	case row.Status == LedgerUnsendable:
		// Not retried into a new revision every cycle: held until the sink can send it.
		a.Kind, a.Revision, a.Confirmed, a.Previous = ActionHold, row.Revision+1, row.ConfirmedValue, row.Accounted
		return a, v.Units != row.Accounted
	}
	a.Kind, a.Revision, a.Confirmed = ActionSend, row.Revision+1, row.ConfirmedValue
	// Not ConfirmedValue: an earlier late row's adjustment is part of the base even when an
	// intent or a failure came after it.
	a.Previous = row.Accounted
	if settled {
		a.Previous = row.Value
	}
	return a, true
}

// late turns a into a late step: Stripe can no longer take the hour.
func (a Action) late(reason LateReason) Action {
	if a.Kind == ActionResume {
		a.Revision++ // the late row supersedes the unfinished intent
		a.Identifier = ""
	}
	a.Kind, a.Reason = ActionLate, reason
	if a.Previous == a.Units {
		// Stripe already holds the value: record the step without an adjustment row.
		a.Reason = ""
	}
	return a
}

// lateReason says whether Stripe can no longer take the key's hour, and why.
func lateReason(k Key, r Rules) (LateReason, bool) {
	if r.Finalized != nil && r.Finalized(k.CustomerID, k.Hour) {
		return LateFinalized, true
	}
	if r.MaxAge > 0 && k.Hour.Before(r.Now.Add(-r.MaxAge)) {
		return LateTooOld, true
	}
	return "", false
}

// FinalizedAfterGrace returns a Finalized rule for calendar-month periods: an hour's invoice
// is final once its period ended more than grace ago (Stripe's invoice finalization grace,
// default 1 h, configurable 1–72 h).
func FinalizedAfterGrace(now time.Time, grace time.Duration) func(string, time.Time) bool {
	return func(_ string, hour time.Time) bool { return !now.Before(plans.PeriodEnd(hour).Add(grace)) }
}
