package billing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Receipt is Stripe's answer to one accepted request.
type Receipt struct {
	StripeID, RequestID string
	Status              int
}

// Sink sends one value to Stripe. Send must be safe to repeat with the same identifier: the
// identifier is also the Idempotency-Key.
type Sink interface {
	Send(ctx context.Context, a Action) (Receipt, error)
}

// Summary is one aggregated value Stripe reports back: an hour of a meter, or a billing period
// of a usage-record price.
type Summary struct {
	Start time.Time
	Value int64
}

// StripeReader reads back what Stripe holds, for Reconcile: the other half of billing's one
// Stripe boundary (StripeSink implements both).
type StripeReader interface {
	// Meters returns the ids of the active meters by event name.
	Meters(ctx context.Context) (map[string]string, error)
	// MeterSummaries returns a customer's hourly totals of a meter over [from, to).
	MeterSummaries(ctx context.Context, meterID, customerID string, from, to time.Time) ([]Summary, error)
	// UsageRecordSummaries returns a customer's per-period totals of a legacy metered price.
	UsageRecordSummaries(ctx context.Context, customerID, priceID string) ([]Summary, error)
}

// StripeSink sends meter events and usage records, and reads their summaries back, through an
// explicit stripe-go client (never the package-level functions, which use the process-wide
// backend).
type StripeSink struct {
	sc *client.API
	mu sync.Mutex
	// items caches the subscription item of each (customer, price) for usage records.
	items map[[2]string]string
}

// NewStripeSink returns a sink over sc.
func NewStripeSink(sc *client.API) *StripeSink {
	return &StripeSink{sc: sc, items: map[[2]string]string{}}
}

var (
	_ Sink         = (*StripeSink)(nil)
	_ StripeReader = (*StripeSink)(nil)
	_ Checker      = (*StripeSink)(nil)
)

// Sendable reports whether a held value of the customer's target now has somewhere to go: for
// a legacy price, a subscription item of the customer on it (looked up afresh, as the cache
// holds only items found). Meters need no item.
func (s *StripeSink) Sendable(ctx context.Context, customerID, target string, sink SinkKind) (bool, error) {
	if sink != SinkUsageRecord {
		return true, nil
	}
	_, err := s.Item(ctx, customerID, target)
	if errors.Is(err, ErrNoSubscriptionItem) {
		return false, nil
	}
	return err == nil, err
}

// Send pushes one value: a meter event for sink meter, a usage record with action=set for
// sink usage_record.
func (s *StripeSink) Send(ctx context.Context, a Action) (Receipt, error) {
	switch a.Sink {
	case SinkMeter:
		return s.sendMeterEvent(ctx, a)
	case SinkUsageRecord:
		return s.sendUsageRecord(ctx, a)
	}
	return Receipt{}, fmt.Errorf("unknown sink %q", a.Sink)
}

func (s *StripeSink) sendMeterEvent(ctx context.Context, a Action) (Receipt, error) {
	p := &stripe.BillingMeterEventParams{
		EventName:  stripe.String(a.Target),
		Identifier: stripe.String(a.Identifier),
		Payload:    map[string]string{"stripe_customer_id": a.CustomerID, "value": strconv.FormatInt(a.Units, 10)},
		Timestamp:  stripe.Int64(a.Hour.Unix()),
	}
	p.Context = ctx
	p.SetIdempotencyKey(a.Identifier)
	ev, err := s.sc.BillingMeterEvents.New(p)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{StripeID: ev.Identifier, RequestID: ev.LastResponse.RequestID, Status: ev.LastResponse.StatusCode}, nil
}

func (s *StripeSink) sendUsageRecord(ctx context.Context, a Action) (Receipt, error) {
	if a.Units < 0 {
		return Receipt{}, &stripe.Error{HTTPStatusCode: http.StatusBadRequest, Msg: "usage records cannot be negative"}
	}
	item, err := s.Item(ctx, a.CustomerID, a.Target)
	if err != nil {
		return Receipt{}, err
	}
	p := &stripe.UsageRecordParams{
		SubscriptionItem: stripe.String(item),
		Quantity:         stripe.Int64(a.Units),
		Timestamp:        stripe.Int64(a.Hour.Unix()),
		Action:           stripe.String(stripe.UsageRecordActionSet),
	}
	p.Context = ctx
	p.SetIdempotencyKey(a.Identifier)
	ur, err := s.sc.UsageRecords.New(p)
	if err != nil {
		// A refused item may be stale (the subscription was replaced): look it up again for
		// the next revision rather than failing it for the sink's whole life.
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 &&
			se.HTTPStatusCode != http.StatusTooManyRequests && se.HTTPStatusCode != http.StatusConflict {
			s.mu.Lock()
			delete(s.items, [2]string{a.CustomerID, a.Target})
			s.mu.Unlock()
		}
		return Receipt{}, err
	}
	return Receipt{StripeID: ur.ID, RequestID: ur.LastResponse.RequestID, Status: ur.LastResponse.StatusCode}, nil
}

// Meters returns the ids of the active meters by event name.
func (s *StripeSink) Meters(ctx context.Context) (map[string]string, error) {
	ms, err := activeMeters(ctx, s.sc)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ms))
	for name, m := range ms {
		out[name] = m.ID
	}
	return out, nil
}

// MeterSummaries returns the customer's hourly totals of the meter over [from, to).
func (s *StripeSink) MeterSummaries(ctx context.Context, meterID, customerID string, from, to time.Time) ([]Summary, error) {
	var out []Summary
	seen := map[int64]bool{}
	err := listPages(func(after *string) ([]string, bool, error) {
		lp := &stripe.BillingMeterEventSummaryListParams{ID: stripe.String(meterID), Customer: stripe.String(customerID),
			StartTime: stripe.Int64(from.Unix()), EndTime: stripe.Int64(to.Unix()), ValueGroupingWindow: stripe.String("hour")}
		lp.Context, lp.Limit, lp.Single, lp.StartingAfter = ctx, stripe.Int64(100), true, after
		it := s.sc.BillingMeterEventSummaries.List(lp)
		var ids []string
		for it.Next() {
			sum := it.BillingMeterEventSummary()
			ids = append(ids, sum.ID)
			start := time.Unix(sum.StartTime, 0).UTC()
			switch v := sum.AggregatedValue; {
			case start.Before(from) || !start.Before(to):
				continue // not an hour asked for (stripe-mock answers with a fixed time)
			case seen[sum.StartTime]:
				return nil, false, fmt.Errorf("hour %s listed twice", start.Format(time.RFC3339))
			// Converting a float beyond int64's range is undefined in Go: refuse it, never wrap it.
			case math.IsNaN(v) || v >= math.MaxInt64 || v <= math.MinInt64:
				return nil, false, &OverflowError{What: "Stripe value", CustomerID: customerID, Target: meterID, Hour: start}
			case v != math.Trunc(v): // billing pushes whole units only; truncating would hide drift
				return nil, false, fmt.Errorf("value %v of hour %s is not a whole number", v, start.Format(time.RFC3339))
			}
			seen[sum.StartTime] = true
			out = append(out, Summary{Start: start, Value: int64(sum.AggregatedValue)})
		}
		return ids, it.Meta() != nil && it.Meta().HasMore, it.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("summaries of meter %s customer %s: %w", meterID, customerID, err)
	}
	return out, nil
}

// UsageRecordSummaries returns the customer's per-period totals of the price, read from its
// subscription item (Stripe summarises usage records per period only).
func (s *StripeSink) UsageRecordSummaries(ctx context.Context, customerID, priceID string) ([]Summary, error) {
	item, err := s.Item(ctx, customerID, priceID)
	if err != nil {
		return nil, err
	}
	var out []Summary
	seen := map[int64]bool{}
	err = listPages(func(after *string) ([]string, bool, error) {
		lp := &stripe.UsageRecordSummaryListParams{SubscriptionItem: stripe.String(item)}
		lp.Context, lp.Limit, lp.Single, lp.StartingAfter = ctx, stripe.Int64(100), true, after
		it := s.sc.UsageRecordSummaries.List(lp)
		var ids []string
		for it.Next() {
			sum := it.UsageRecordSummary()
			ids = append(ids, sum.ID)
			switch {
			case sum.Period == nil:
				continue
			case seen[sum.Period.Start]:
				return nil, false, fmt.Errorf("period starting %s listed twice", time.Unix(sum.Period.Start, 0).UTC().Format(time.RFC3339))
			case sum.TotalUsage < 0: // usage records are never negative
				return nil, false, fmt.Errorf("total_usage %d is negative", sum.TotalUsage)
			}
			seen[sum.Period.Start] = true
			out = append(out, Summary{Start: time.Unix(sum.Period.Start, 0).UTC(), Value: sum.TotalUsage})
		}
		return ids, it.Meta() != nil && it.Meta().HasMore, it.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("usage record summaries of %s: %w", item, err)
	}
	return out, nil
}

// ErrNoSubscriptionItem is returned when a customer has no subscription item on a legacy
// metered price, so usage records have nowhere to go.
var ErrNoSubscriptionItem = errors.New("no subscription item on the price")

// Item returns the customer's subscription item on price, from the customer's subscriptions
// in force (cached for the sink's life).
func (s *StripeSink) Item(ctx context.Context, customerID, priceID string) (string, error) {
	k := [2]string{customerID, priceID}
	s.mu.Lock()
	id, ok := s.items[k]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	err := listPages(func(after *string) ([]string, bool, error) {
		p := &stripe.SubscriptionListParams{Customer: stripe.String(customerID), Price: stripe.String(priceID)}
		p.Context, p.Single, p.StartingAfter = ctx, true, after
		it := s.sc.Subscriptions.List(p)
		var ids []string
		for it.Next() {
			sub := it.Subscription()
			ids = append(ids, sub.ID)
			for _, si := range subscriptionItems(sub) {
				if si.Price != nil && si.Price.ID == priceID {
					id = si.ID
				}
			}
		}
		return ids, id == "" && it.Meta() != nil && it.Meta().HasMore, it.Err()
	})
	if err != nil {
		return "", fmt.Errorf("subscription item of customer %s price %s: %w", customerID, priceID, err)
	}
	if id == "" {
		return "", fmt.Errorf("customer %s price %s: %w", customerID, priceID, ErrNoSubscriptionItem)
	}
	s.mu.Lock()
	s.items[k] = id
	s.mu.Unlock()
	return id, nil
}

func subscriptionItems(sub *stripe.Subscription) []*stripe.SubscriptionItem {
	if sub.Items == nil {
		return nil
	}
	return sub.Items.Data
}

// maxListPages bounds one list: far beyond any window's summaries or a customer's
// subscriptions.
const maxListPages = 10_000

// listPages reads a Stripe list a page at a time: page requests the page after after (nil: the
// first), with Single set so stripe-go does not page on its own, and returns its objects' ids,
// has_more and the error. stripe-go's own paging panics on an empty page that claims more and
// pages forever on a page that repeats; both end the list here with an error.
func listPages(page func(after *string) (ids []string, more bool, err error)) error {
	var after *string
	seen := map[string]bool{}
	for n := 1; ; n++ {
		ids, more, err := page(after)
		if err != nil || !more {
			return err
		}
		if n >= maxListPages {
			return fmt.Errorf("more than %d pages", maxListPages)
		}
		if len(ids) == 0 || seen[ids[len(ids)-1]] {
			return fmt.Errorf("page %d has has_more but no new object: the list would never end", n)
		}
		last := ids[len(ids)-1]
		seen[last] = true
		after = &last
	}
}

// failure classifies a failed send.
type failure uint8

const (
	outRetry      failure = iota + 1 // refused before running (429, 409, 503) or lost: same key again
	outNewKey                        // a 5xx Stripe stores for the key: only a new revision can succeed
	outDuplicate                     // the identifier was already accepted: Stripe holds the value
	outLate                          // the hour can no longer change in Stripe
	outFailed                        // a request Stripe refuses as it is
	outUnsendable                    // the value has nowhere to go (no subscription item)
)

// identifierExists matches Stripe's refusal of a meter event whose identifier it already holds,
// as real Stripe words it once the request's idempotency key has expired: a 400
// invalid_request_error "An event already exists with identifier X." without a code
// (docs/billing.md). Identifiers are never sent with two values, so Stripe holds this value.
var identifierExists = regexp.MustCompile(`(?i)\balready exists with (?:the )?identifier\b|\bidentifier\b.{0,120}\balready exists\b`)

// duplicateIdentifier reports whether se says the meter event's identifier is already taken.
func duplicateIdentifier(se *stripe.Error) bool {
	if se.HTTPStatusCode != http.StatusBadRequest {
		return false
	}
	if se.Code == stripe.ErrorCode("resource_already_exists") && se.Param == "identifier" {
		return true
	}
	return (se.Type == "" || se.Type == stripe.ErrorTypeInvalidRequest) && identifierExists.MatchString(se.Msg)
}

// classify says what a failed send means, and Stripe's HTTP status (0 when none).
func classify(err error) (failure, int) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return outRetry, 0
	}
	var se *stripe.Error
	if errors.Is(err, ErrNoSubscriptionItem) {
		return outUnsendable, 0
	}
	if !errors.As(err, &se) {
		return outRetry, 0 // network failure: the request may or may not have run
	}
	st := se.HTTPStatusCode
	switch {
	case st == http.StatusTooManyRequests || st == http.StatusConflict || st == http.StatusServiceUnavailable:
		return outRetry, st
	case st >= 500:
		return outNewKey, st
	case duplicateIdentifier(se):
		return outDuplicate, st
	case se.Code == stripe.ErrorCode("invoice_finalized") || se.Param == "timestamp":
		return outLate, st
	case st == 0:
		return outRetry, 0
	}
	return outFailed, st
}
