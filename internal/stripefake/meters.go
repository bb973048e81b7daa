package stripefake

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Meter event limits Stripe documents.
const (
	// MeterEventMaxAge is how old a meter event's timestamp may be (35 calendar days).
	MeterEventMaxAge = 35 * 24 * time.Hour
	// MeterEventMaxAhead is how far in the future a timestamp may be.
	MeterEventMaxAhead = 5 * time.Minute
	// IdentifierWindow is how long an identifier stays unique (Stripe: at least 24 h).
	IdentifierWindow = 24 * time.Hour
)

// billingState is the Billing Meters and usage records part of the fake.
type billingState struct {
	meters      map[string]*meter // by id
	meterEvents map[string]string // event_name → meter id
	// identifiers maps a meter event identifier to when it was accepted.
	identifiers map[string]time.Time
	// windows hold, per (meter, customer, hour), the newest event: a pre-aggregated hourly
	// meter keeps only the last event received for a window.
	windows map[windowKey]MeterWindow
	// raw sums events of meters without an event_time_window, per (meter, customer, hour).
	raw map[windowKey]int64
	// usage holds the quantity set at each (subscription item, timestamp).
	usage map[usageKey]int64
	// finalizedBefore per customer: usage before that instant belongs to a finalized invoice.
	finalizedBefore map[string]time.Time
	accepted        int
}

type meter struct {
	record
	DisplayName     string
	EventName       string
	Formula         string
	EventTimeWindow string
	CustomerKey     string
	ValueKey        string
	Status          string
}

type windowKey struct {
	meter, customer string
	hour            int64
}

type usageKey struct {
	item string
	ts   int64
}

// MeterWindow is what a pre-aggregated meter holds for one customer and hour.
type MeterWindow struct {
	Value      int64
	Identifier string
}

func newBillingState() *billingState {
	return &billingState{meters: map[string]*meter{}, meterEvents: map[string]string{}, identifiers: map[string]time.Time{},
		windows: map[windowKey]MeterWindow{}, raw: map[windowKey]int64{}, usage: map[usageKey]int64{}, finalizedBefore: map[string]time.Time{}}
}

func (s *Server) routeBilling() {
	s.billing = newBillingState()
	s.route("POST /v1/billing/meters", []string{"display_name", "event_name", "default_aggregation", "event_time_window",
		"customer_mapping", "value_settings", "expand"}, false, s.createMeter)
	s.route("GET /v1/billing/meters", []string{"status"}, true, s.listMeters)
	s.route("GET /v1/billing/meters/{id}", nil, false, s.getMeter)
	s.route("POST /v1/billing/meter_events", []string{"event_name", "identifier", "payload", "timestamp"}, false, s.createMeterEvent)
	s.route("GET /v1/billing/meters/{id}/event_summaries", []string{"customer", "start_time", "end_time", "value_grouping_window"}, true, s.meterEventSummaries)
	s.routeUsageRecords()
}

func (s *Server) createMeter(c *call) (any, *apiError) {
	b := s.billing
	name := c.form.Get("event_name")
	switch {
	case c.form.Get("display_name") == "":
		return nil, missing("display_name")
	case name == "":
		return nil, missing("event_name")
	case c.form.Get("default_aggregation[formula]") == "":
		return nil, missing("default_aggregation[formula]")
	}
	if id, ok := b.meterEvents[name]; ok && b.meters[id].Status == "active" {
		return nil, invalid("event_name", "An active meter with event_name `%s` already exists.", name)
	}
	m := &meter{DisplayName: c.form.Get("display_name"), EventName: name, Formula: c.form.Get("default_aggregation[formula]"),
		EventTimeWindow: c.form.Get("event_time_window"), CustomerKey: c.form.Get("customer_mapping[event_payload_key]"),
		ValueKey: c.form.Get("value_settings[event_payload_key]"), Status: "active"}
	switch m.Formula {
	case "sum", "count", "last":
	default:
		return nil, invalid("default_aggregation[formula]", "Invalid default_aggregation[formula]: must be one of count, last, or sum")
	}
	switch m.EventTimeWindow {
	case "", "hour", "day":
	default:
		return nil, invalid("event_time_window", "Invalid event_time_window: must be one of day or hour")
	}
	if t := c.form.Get("customer_mapping[type]"); t != "" && t != "by_id" {
		return nil, invalid("customer_mapping[type]", "Invalid customer_mapping[type]: must be by_id")
	}
	if m.CustomerKey == "" {
		m.CustomerKey = "stripe_customer_id"
	}
	if m.ValueKey == "" {
		m.ValueKey = "value"
	}
	id, seq := s.nextID("mtr")
	m.record = record{ID: id, Created: c.now.Unix(), seq: seq}
	b.meters[id] = m
	b.meterEvents[name] = id
	return meterJSON(m), nil
}

func (s *Server) listMeters(c *call) (any, *apiError) {
	status := c.form.Get("status")
	var out []*meter
	for _, m := range s.billing.meters {
		if status == "" || m.Status == status {
			out = append(out, m)
		}
	}
	return paginate(c, out, "billing.meter", "/v1/billing/meters", func(m *meter) any { return meterJSON(m) })
}

func (s *Server) getMeter(c *call) (any, *apiError) {
	m, err := byPathID(c, s.billing.meters, "billing.meter")
	if err != nil {
		return nil, err
	}
	return meterJSON(m), nil
}

func meterJSON(m *meter) map[string]any {
	return map[string]any{"id": m.ID, "object": "billing.meter", "created": m.Created, "livemode": false,
		"display_name": m.DisplayName, "event_name": m.EventName, "event_time_window": nullable(m.EventTimeWindow),
		"status": m.Status, "default_aggregation": map[string]any{"formula": m.Formula},
		"customer_mapping":   map[string]any{"event_payload_key": m.CustomerKey, "type": "by_id"},
		"value_settings":     map[string]any{"event_payload_key": m.ValueKey},
		"status_transitions": map[string]any{"deactivated_at": nil}, "updated": m.Created}
}

// createMeterEvent validates an event as Stripe documents it and applies it at once (real
// Stripe processes events asynchronously; the fake refuses synchronously what Stripe would
// report later, so tests see every problem).
func (s *Server) createMeterEvent(c *call) (any, *apiError) {
	b := s.billing
	name := c.form.Get("event_name")
	if name == "" {
		return nil, missing("event_name")
	}
	mid, ok := b.meterEvents[name]
	if !ok || b.meters[mid].Status != "active" {
		return nil, invalid("event_name", "No active meter was found for event_name `%s`.", name)
	}
	m := b.meters[mid]
	payload := formMap(c.form, "payload")
	cus := payload[m.CustomerKey]
	if cus == "" {
		return nil, missing("payload[" + m.CustomerKey + "]")
	}
	if _, ok := s.customers[cus]; !ok {
		return nil, noSuch("customer", "payload["+m.CustomerKey+"]", cus)
	}
	raw, ok := payload[m.ValueKey]
	if !ok {
		return nil, missing("payload[" + m.ValueKey + "]")
	}
	value, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, invalid("payload["+m.ValueKey+"]", "The value `%s` is not a whole number.", raw)
	}
	ts := c.now.Unix()
	if n, ok, aerr := formInt(c.form, "timestamp"); aerr != nil {
		return nil, aerr
	} else if ok {
		ts = n
	}
	if ts < c.now.Add(-MeterEventMaxAge).Unix() {
		return nil, invalid("timestamp", "Timestamp must be within the past 35 calendar days.")
	}
	if ts > c.now.Add(MeterEventMaxAhead).Unix() {
		return nil, invalid("timestamp", "Timestamp must not be more than 5 minutes in the future.")
	}
	if fb, ok := b.finalizedBefore[cus]; ok && ts < fb.Unix() {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invoice_finalized", param: "timestamp",
			message: "The usage at this timestamp belongs to an invoice that is already finalized."}
	}
	ident := c.form.Get("identifier")
	if ident == "" {
		ident = fmt.Sprintf("fake-%d", s.seq+1)
	}
	if at, ok := b.identifiers[ident]; ok && c.now.Sub(at) < IdentifierWindow {
		// As real Stripe answers once the request's idempotency key has expired (see
		// ExpireIdempotencyKeys): no code, no param, only this message.
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error",
			message: fmt.Sprintf("An event already exists with identifier %s.", ident)}
	}
	b.identifiers[ident] = c.now
	b.accepted++
	hour := ts - ts%3600
	key := windowKey{meter: mid, customer: cus, hour: hour}
	switch m.EventTimeWindow {
	case "hour":
		b.windows[key] = MeterWindow{Value: value, Identifier: ident}
	case "day":
		key.hour = ts - ts%86400
		b.windows[key] = MeterWindow{Value: value, Identifier: ident}
	default:
		b.raw[key] += value
	}
	return map[string]any{"object": "billing.meter_event", "created": c.now.Unix(), "event_name": name, "identifier": ident,
		"livemode": false, "payload": payload, "timestamp": ts}, nil
}

// meterEventSummaries answers per hour (value_grouping_window=hour) or as one summary over
// [start_time, end_time); times must be minute-aligned, as Stripe requires.
func (s *Server) meterEventSummaries(c *call) (any, *apiError) {
	b := s.billing
	m, err := byPathID(c, b.meters, "billing.meter")
	if err != nil {
		return nil, err
	}
	id := m.ID
	cus := c.form.Get("customer")
	if cus == "" {
		return nil, missing("customer")
	}
	start, okS, err := formInt(c.form, "start_time")
	if err != nil {
		return nil, err
	}
	end, okE, err := formInt(c.form, "end_time")
	if err != nil {
		return nil, err
	}
	switch {
	case !okS:
		return nil, missing("start_time")
	case !okE:
		return nil, missing("end_time")
	case start%60 != 0 || end%60 != 0:
		return nil, invalid("start_time", "start_time and end_time must be aligned to minute boundaries.")
	case end <= start:
		return nil, invalid("end_time", "end_time must be after start_time.")
	}
	grouping := c.form.Get("value_grouping_window")
	if grouping != "" && grouping != "hour" && grouping != "day" {
		return nil, invalid("value_grouping_window", "Invalid value_grouping_window: must be one of day or hour")
	}
	sums := map[int64]int64{}
	for k, w := range b.windows {
		if k.meter == id && k.customer == cus && k.hour >= start && k.hour < end {
			sums[k.hour] += w.Value
		}
	}
	for k, v := range b.raw {
		if k.meter == id && k.customer == cus && k.hour >= start && k.hour < end {
			sums[k.hour] += v
		}
	}
	var out []*summary
	n := 0
	add := func(from, to, v int64) {
		n++
		out = append(out, &summary{record: record{ID: fmt.Sprintf("mtrusg_fake%d_%d", from, n), Created: -from, seq: -n},
			start: from, end: to, value: v, meter: m.ID, customer: cus})
	}
	switch grouping {
	case "":
		var total int64
		for _, v := range sums {
			total += v
		}
		add(start, end, total)
	default:
		step := int64(3600)
		if grouping == "day" {
			step = 86400
		}
		byBucket := map[int64]int64{}
		for h, v := range sums {
			byBucket[h-h%step] += v
		}
		for from := start - start%step; from < end; from += step {
			if v, ok := byBucket[from]; ok {
				add(max(from, start), min(from+step, end), v)
			}
		}
	}
	// Stripe lists summaries in time order; paginate sorts newest "created" first, and
	// Created holds −start, so the page comes out oldest first.
	return paginate(c, out, "billing.meter_event_summary", "/v1/billing/meters/"+id+"/event_summaries", func(x *summary) any {
		return map[string]any{"id": x.ID, "object": "billing.meter_event_summary", "aggregated_value": float64(x.value),
			"start_time": x.start, "end_time": x.end, "livemode": false, "meter": x.meter}
	})
}

type summary struct {
	record
	start, end, value int64
	meter, customer   string
}

// SetFinalizedBefore marks the customer's usage before t as invoiced and finalized: meter
// events and usage records timestamped before t are refused (code invoice_finalized).
func (s *Server) SetFinalizedBefore(customerID string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billing.finalizedBefore[customerID] = t.UTC()
}

// MeterWindows returns, per customer and hour, what the pre-aggregated meter with this
// event_name holds (raw meters' sums included), for tests to compare with what should be.
func (s *Server) MeterWindows(eventName string) map[string]map[time.Time]MeterWindow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[time.Time]MeterWindow{}
	id := s.billing.meterEvents[eventName]
	put := func(k windowKey, w MeterWindow) {
		if out[k.customer] == nil {
			out[k.customer] = map[time.Time]MeterWindow{}
		}
		out[k.customer][time.Unix(k.hour, 0).UTC()] = w
	}
	for k, w := range s.billing.windows {
		if k.meter == id {
			put(k, w)
		}
	}
	for k, v := range s.billing.raw {
		if k.meter == id {
			put(k, MeterWindow{Value: v})
		}
	}
	return out
}

// MeterEventNames returns the event names of the active meters, sorted.
func (s *Server) MeterEventNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, id := range s.billing.meterEvents {
		if s.billing.meters[id].Status == "active" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// AcceptedMeterEvents counts the meter events applied (replays and refusals excluded).
func (s *Server) AcceptedMeterEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billing.accepted
}
