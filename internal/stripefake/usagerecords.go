package stripefake

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

func (s *Server) routeUsageRecords() {
	s.route("POST /v1/subscription_items/{id}/usage_records", []string{"quantity", "timestamp", "action"}, false, s.createUsageRecord)
	s.route("GET /v1/subscription_items/{id}/usage_record_summaries", nil, true, s.usageRecordSummaries)
}

// createUsageRecord stores quantity at (item, timestamp): action=set replaces the quantity
// stored at that exact timestamp, increment (the default) adds to it. The timestamp must fall
// in the item's current billing period (or the last one within the one-hour grace Stripe
// allows before the invoice is finalized) and not in a finalized invoice.
func (s *Server) createUsageRecord(c *call) (any, *apiError) {
	si, err := byPathID(c, s.items, "subscription_item")
	if err != nil {
		return nil, err
	}
	id := si.ID
	p := s.prices[si.Price]
	if p.Recurring == nil || p.Recurring.UsageType != "metered" {
		return nil, invalid("", "Usage records can only be created for metered prices; price %s is licensed.", p.ID)
	}
	q, ok, err := formInt(c.form, "quantity")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missing("quantity")
	}
	if q < 0 {
		return nil, invalid("quantity", "Quantity must be a non-negative integer.")
	}
	action := c.form.Get("action")
	if action == "" {
		action = "increment"
	}
	if action != "increment" && action != "set" {
		return nil, invalid("action", "Invalid action: must be one of increment or set")
	}
	ts := c.now.Unix()
	if v := c.form.Get("timestamp"); v != "" && v != "now" {
		n, _, err := formInt(c.form, "timestamp")
		if err != nil {
			return nil, err
		}
		ts = n
	}
	sub := s.subscriptions[si.Subscription]
	if sub.ended() {
		return nil, invalid("", "Cannot create usage records for a canceled subscription.")
	}
	if fb, ok := s.billing.finalizedBefore[sub.Customer]; ok && ts < fb.Unix() {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invoice_finalized", param: "timestamp",
			message: "The usage at this timestamp belongs to an invoice that is already finalized."}
	}
	start, end := sub.period(c.now)
	prevStart, _ := sub.period(time.Unix(start-1, 0))
	if ts >= end+int64(MeterEventMaxAhead/time.Second) || ts < prevStart || (ts < start && c.now.Unix() >= start+3600) {
		return nil, invalid("timestamp", "Cannot create the usage record with this timestamp because timestamps must be after the subscription's current period start time.")
	}
	k := usageKey{item: id, ts: ts}
	if action == "set" {
		s.billing.usage[k] = q
	} else {
		s.billing.usage[k] += q
	}
	rid, _ := s.nextID("mbur")
	return map[string]any{"id": rid, "object": "usage_record", "livemode": false, "quantity": s.billing.usage[k],
		"subscription_item": id, "timestamp": ts}, nil
}

// usageRecordSummaries lists one summary per billing period with usage, newest first, as
// Stripe does: total_usage sums the quantity stored at each timestamp of the period.
func (s *Server) usageRecordSummaries(c *call) (any, *apiError) {
	si, err := byPathID(c, s.items, "subscription_item")
	if err != nil {
		return nil, err
	}
	id := si.ID
	sub := s.subscriptions[si.Subscription]
	totals := map[int64]int64{}
	ends := map[int64]int64{}
	for k, q := range s.billing.usage {
		if k.item != id {
			continue
		}
		start, end := sub.periodAt(k.ts)
		totals[start] += q
		ends[start] = end
	}
	var out []*usageSummary
	for start, total := range totals {
		out = append(out, &usageSummary{record: record{ID: fmt.Sprintf("sis_fake_%s_%d", id, start), Created: start}, start: start, end: ends[start], total: total})
	}
	return paginate(c, out, "usage_record_summary", "/v1/subscription_items/"+id+"/usage_record_summaries", func(x *usageSummary) any {
		return map[string]any{"id": x.ID, "object": "usage_record_summary", "invoice": nil, "livemode": false,
			"period": map[string]any{"start": x.start, "end": x.end}, "subscription_item": id, "total_usage": x.total}
	})
}

type usageSummary struct {
	record
	start, end, total int64
}

// periodAt returns the monthly billing period holding instant ts.
func (sub *subscription) periodAt(ts int64) (start, end int64) {
	anchor := time.Unix(sub.Anchor, 0).UTC()
	at := time.Unix(ts, 0).UTC()
	k := 0
	for anchor.AddDate(0, k, 0).After(at) {
		k--
	}
	for !anchor.AddDate(0, k+1, 0).After(at) {
		k++
	}
	return anchor.AddDate(0, k, 0).Unix(), anchor.AddDate(0, k+1, 0).Unix()
}

// UsageRecords returns, per subscription item, the quantity stored at each timestamp.
func (s *Server) UsageRecords() map[string]map[time.Time]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[time.Time]int64{}
	for k, q := range s.billing.usage {
		if out[k.item] == nil {
			out[k.item] = map[time.Time]int64{}
		}
		out[k.item][time.Unix(k.ts, 0).UTC()] = q
	}
	return out
}

// UsageRecordItems returns the subscription items holding usage records, sorted.
func (s *Server) UsageRecordItems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for k := range s.billing.usage {
		seen[k.item] = true
	}
	return slices.Sorted(maps.Keys(seen))
}
