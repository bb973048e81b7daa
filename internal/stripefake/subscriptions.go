package stripefake

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Subscription statuses.
const (
	StatusActive            = "active"
	StatusTrialing          = "trialing"
	StatusPastDue           = "past_due"
	StatusUnpaid            = "unpaid"
	StatusPaused            = "paused"
	StatusIncomplete        = "incomplete"
	StatusIncompleteExpired = "incomplete_expired"
	StatusCanceled          = "canceled"
)

// embeddedItems is how many items a subscription object embeds; more are listed through
// /v1/subscription_items.
const embeddedItems = 10

// maxItems is Stripe's limit of items per subscription.
const maxItems = 20

type subscription struct {
	record
	Customer          string
	Status            string
	StartDate         int64
	Anchor            int64
	CancelAtPeriodEnd bool
	CancelAt          int64
	CanceledAt        int64
	EndedAt           int64
	TrialStart        int64
	TrialEnd          int64
	Metadata          map[string]string
	// Items are the live items' ids, oldest first.
	Items []string
}

type subscriptionItem struct {
	record
	Subscription string
	Price        string
	Quantity     *int64
	Metadata     map[string]string
}

func (sub *subscription) ended() bool {
	return sub.Status == StatusCanceled || sub.Status == StatusIncompleteExpired
}

func (sub *subscription) cancel(at time.Time) {
	sub.Status, sub.CanceledAt, sub.EndedAt, sub.CancelAtPeriodEnd = StatusCanceled, at.Unix(), at.Unix(), false
}

// advance applies what time alone changes: a trial that ended, a scheduled cancellation.
func (sub *subscription) advance(now time.Time) {
	if sub.ended() {
		return
	}
	if sub.Status == StatusTrialing && sub.TrialEnd != 0 && now.Unix() >= sub.TrialEnd {
		sub.Status = StatusActive
	}
	if sub.CancelAt != 0 && now.Unix() >= sub.CancelAt {
		sub.cancel(time.Unix(sub.CancelAt, 0))
	}
}

// period returns the monthly billing period around now, counted from the anchor.
func (sub *subscription) period(now time.Time) (start, end int64) {
	anchor := time.Unix(sub.Anchor, 0).UTC()
	if sub.ended() {
		now = time.Unix(sub.EndedAt, 0).UTC()
	}
	k := 0
	for !anchor.AddDate(0, k+1, 0).After(now) {
		k++
	}
	return anchor.AddDate(0, k, 0).Unix(), anchor.AddDate(0, k+1, 0).Unix()
}

func (s *Server) routeSubscriptions() {
	create := []string{"customer", "items", "metadata", "trial_period_days", "trial_end", "backdate_start_date",
		"proration_behavior", "payment_behavior", "cancel_at_period_end", "cancel_at", "collection_method",
		"days_until_due", "default_payment_method", "description", "billing_cycle_anchor", "currency"}
	update := []string{"items", "metadata", "proration_behavior", "payment_behavior", "cancel_at_period_end",
		"cancel_at", "trial_end", "description", "collection_method", "days_until_due", "default_payment_method"}
	s.route("POST /v1/subscriptions", create, false, s.createSubscription)
	s.route("GET /v1/subscriptions", []string{"customer", "price", "status", "created", "collection_method"}, true, s.listSubscriptions)
	s.route("GET /v1/subscriptions/{id}", nil, false, s.getSubscription)
	s.route("POST /v1/subscriptions/{id}", update, false, s.updateSubscription)
	s.route("DELETE /v1/subscriptions/{id}", []string{"invoice_now", "prorate", "cancellation_details"}, false, s.cancelSubscription)
	s.route("GET /v1/subscription_items", []string{"subscription"}, true, s.listSubscriptionItems)
	s.route("GET /v1/subscription_items/{id}", nil, false, s.getSubscriptionItem)
}

func (s *Server) createSubscription(c *call) (any, *apiError) {
	cusID := c.form.Get("customer")
	if cusID == "" {
		return nil, missing("customer")
	}
	if _, ok := s.customers[cusID]; !ok {
		return nil, noSuch("customer", "customer", cusID)
	}
	items := formList(c.form, "items")
	if len(items) == 0 {
		return nil, missing("items")
	}
	start := c.now.Unix()
	if n, ok, err := formInt(c.form, "backdate_start_date"); err != nil {
		return nil, err
	} else if ok {
		if n > start {
			return nil, invalid("backdate_start_date", "backdate_start_date must be in the past.")
		}
		start = n
	}
	id, seq := s.nextID("sub")
	sub := &subscription{record: record{ID: id, Created: c.now.Unix(), seq: seq}, Customer: cusID, Status: StatusActive,
		StartDate: start, Anchor: start, Metadata: map[string]string{}}
	if days, ok, err := formInt(c.form, "trial_period_days"); err != nil {
		return nil, err
	} else if ok && days > 0 {
		sub.Status, sub.TrialStart, sub.TrialEnd = StatusTrialing, c.now.Unix(), c.now.AddDate(0, 0, int(days)).Unix()
		sub.Anchor = sub.TrialEnd
	}
	if c.form.Get("payment_behavior") == "default_incomplete" {
		sub.Status = StatusIncomplete
	}
	if err := s.setSubscriptionFields(sub, c); err != nil {
		return nil, err
	}
	var created []*subscriptionItem
	for i, it := range items {
		si, err := s.newItem(sub, it, i, c.now)
		if err != nil {
			return nil, err
		}
		created = append(created, si)
		sub.Items = append(sub.Items, si.ID)
	}
	if err := checkItems(created); err != nil {
		return nil, err
	}
	for _, si := range created {
		s.items[si.ID] = si
	}
	s.subscriptions[id] = sub
	return s.subscriptionJSON(sub), nil
}

func (s *Server) newItem(sub *subscription, it map[string]string, i int, now time.Time) (*subscriptionItem, *apiError) {
	param := fmt.Sprintf("items[%d][price]", i)
	pid := it["price"]
	if pid == "" {
		return nil, missing(param)
	}
	p, ok := s.prices[pid]
	if !ok {
		return nil, noSuch("price", param, pid)
	}
	if p.Recurring == nil {
		return nil, invalid(param, "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.")
	}
	id, seq := s.nextID("si")
	si := &subscriptionItem{record: record{ID: id, Created: now.Unix(), seq: seq}, Subscription: sub.ID, Price: pid, Metadata: map[string]string{}}
	if err := setQuantity(si, p, it, i); err != nil {
		return nil, err
	}
	return si, nil
}

func setQuantity(si *subscriptionItem, p *price, it map[string]string, i int) *apiError {
	q, ok := it["quantity"]
	if !ok {
		if p.Recurring.UsageType != "metered" && si.Quantity == nil {
			one := int64(1)
			si.Quantity = &one
		}
		return nil
	}
	if p.Recurring.UsageType == "metered" {
		return invalid(fmt.Sprintf("items[%d][quantity]", i), "Quantity should not be specified where usage_type is `metered`. Remove quantity from `line_items[0]`.")
	}
	var n int64
	if _, err := fmt.Sscan(q, &n); err != nil || n < 0 {
		return invalid(fmt.Sprintf("items[%d][quantity]", i), "Invalid integer: %s", q)
	}
	si.Quantity = &n
	return nil
}

// checkItems refuses more than Stripe's 20 items and two items with the same price.
func checkItems(items []*subscriptionItem) *apiError {
	if len(items) > maxItems {
		return invalid("items", "A subscription can have at most %d items.", maxItems)
	}
	seen := map[string]bool{}
	for _, si := range items {
		if seen[si.Price] {
			return invalid("items", "Cannot add multiple subscription items with the same price: %s", si.Price)
		}
		seen[si.Price] = true
	}
	return nil
}

// setSubscriptionFields applies metadata and scheduled cancellation. cancel_at_period_end
// sets cancel_at to the current period's end, as Stripe does.
func (s *Server) setSubscriptionFields(sub *subscription, c *call) *apiError {
	if n, ok, err := formInt(c.form, "cancel_at"); err != nil {
		return err
	} else if ok {
		sub.CancelAt = n
	}
	if b, ok, err := formBool(c.form, "cancel_at_period_end"); err != nil {
		return err
	} else if ok {
		sub.CancelAtPeriodEnd = b
		sub.CancelAt = 0
		if b {
			_, sub.CancelAt = sub.period(c.now)
		}
	}
	return applyMetadata(sub.Metadata, c.form)
}

func (s *Server) subscription(id string, now time.Time) (*subscription, *apiError) {
	sub, ok := s.subscriptions[id]
	if !ok {
		return nil, noSuch("subscription", "id", id)
	}
	sub.advance(now)
	return sub, nil
}

func (s *Server) getSubscription(c *call) (any, *apiError) {
	sub, err := s.subscription(c.r.PathValue("id"), c.now)
	if err != nil {
		return nil, err
	}
	return s.subscriptionJSON(sub), nil
}

// updateSubscription changes items the way Stripe's update does: items[n][id] with deleted
// removes an item, with price swaps its price in place (the item keeps its id and creation
// time), and an entry without id adds a new item created now.
func (s *Server) updateSubscription(c *call) (any, *apiError) {
	sub, err := s.subscription(c.r.PathValue("id"), c.now)
	if err != nil {
		return nil, err
	}
	if sub.ended() {
		return nil, invalid("", "A canceled subscription can only update its cancellation_details and metadata.")
	}
	next := *sub
	next.Metadata = maps.Clone(sub.Metadata)
	next.Items = append([]string(nil), sub.Items...)
	if err := s.setSubscriptionFields(&next, c); err != nil {
		return nil, err
	}
	changed := map[string]*subscriptionItem{}
	var added []*subscriptionItem
	for i, it := range formList(c.form, "items") {
		id := it["id"]
		if id == "" {
			si, err := s.newItem(&next, it, i, c.now)
			if err != nil {
				return nil, err
			}
			added = append(added, si)
			next.Items = append(next.Items, si.ID)
			continue
		}
		cur, ok := s.items[id]
		if !ok || cur.Subscription != sub.ID {
			return nil, invalid(fmt.Sprintf("items[%d][id]", i), "Invalid subscription_item: %s", id)
		}
		if it["deleted"] == "true" {
			next.Items = removeID(next.Items, id)
			continue
		}
		upd := *cur
		if pid := it["price"]; pid != "" {
			p, ok := s.prices[pid]
			if !ok {
				return nil, noSuch("price", fmt.Sprintf("items[%d][price]", i), pid)
			}
			upd.Price = pid
			if err := setQuantity(&upd, p, it, i); err != nil {
				return nil, err
			}
		} else if err := setQuantity(&upd, s.prices[upd.Price], it, i); err != nil {
			return nil, err
		}
		changed[id] = &upd
	}
	if len(next.Items) == 0 {
		return nil, invalid("items", "A subscription must have at least one active item.")
	}
	final := make([]*subscriptionItem, 0, len(next.Items))
	for _, id := range next.Items {
		switch {
		case changed[id] != nil:
			final = append(final, changed[id])
		case s.items[id] != nil:
			final = append(final, s.items[id])
		}
	}
	final = append(final, added...)
	if err := checkItems(final); err != nil {
		return nil, err
	}
	for _, id := range sub.Items {
		if !slices.Contains(next.Items, id) {
			delete(s.items, id)
		}
	}
	for _, si := range final {
		s.items[si.ID] = si
	}
	*sub = next
	return s.subscriptionJSON(sub), nil
}

func (s *Server) cancelSubscription(c *call) (any, *apiError) {
	sub, err := s.subscription(c.r.PathValue("id"), c.now)
	if err != nil {
		return nil, err
	}
	if sub.ended() {
		return nil, invalid("", "This subscription has already been canceled.")
	}
	sub.cancel(c.now)
	return s.subscriptionJSON(sub), nil
}

func (s *Server) listSubscriptions(c *call) (any, *apiError) {
	cus, pid, status := c.form.Get("customer"), c.form.Get("price"), c.form.Get("status")
	switch status {
	case "", "all", "ended", StatusActive, StatusTrialing, StatusPastDue, StatusUnpaid, StatusPaused,
		StatusIncomplete, StatusIncompleteExpired, StatusCanceled:
	default:
		return nil, invalid("status", "Invalid status: must be one of active, all, canceled, ended, incomplete, incomplete_expired, past_due, paused, trialing, or unpaid")
	}
	var out []*subscription
	for _, sub := range s.subscriptions {
		sub.advance(c.now)
		switch {
		case cus != "" && sub.Customer != cus:
		case pid != "" && !s.hasPrice(sub, pid):
		case status == "" && sub.Status == StatusCanceled: // the default leaves out canceled ones
		case status == "ended" && !sub.ended():
		case status != "" && status != "all" && status != "ended" && sub.Status != status:
		default:
			out = append(out, sub)
		}
	}
	return paginate(c, out, "subscription", "/v1/subscriptions", func(sub *subscription) any { return s.subscriptionJSON(sub) })
}

func (s *Server) hasPrice(sub *subscription, pid string) bool {
	for _, id := range sub.Items {
		if si := s.items[id]; si != nil && si.Price == pid {
			return true
		}
	}
	return false
}

func (s *Server) listSubscriptionItems(c *call) (any, *apiError) {
	subID := c.form.Get("subscription")
	if subID == "" {
		return nil, missing("subscription")
	}
	sub, ok := s.subscriptions[subID]
	if !ok {
		return nil, noSuch("subscription", "subscription", subID)
	}
	var out []*subscriptionItem
	for _, id := range sub.Items {
		out = append(out, s.items[id])
	}
	return paginate(c, out, "subscription_item", "/v1/subscription_items", func(si *subscriptionItem) any { return s.itemJSON(si) })
}

func (s *Server) getSubscriptionItem(c *call) (any, *apiError) {
	si, err := byPathID(c, s.items, "subscription_item")
	if err != nil {
		return nil, err
	}
	return s.itemJSON(si), nil
}

// SetSubscriptionStatus forces a subscription's status, for states the API cannot reach
// directly (past_due, unpaid, paused, incomplete_expired). Ending statuses set ended_at to now.
func (s *Server) SetSubscriptionStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subscriptions[id]
	if !ok {
		return fmt.Errorf("stripefake: no subscription %s", id)
	}
	switch status {
	case StatusCanceled:
		sub.cancel(s.clock())
	case StatusIncompleteExpired:
		sub.Status, sub.EndedAt = status, s.clock().Unix()
	case StatusActive, StatusTrialing, StatusPastDue, StatusUnpaid, StatusPaused, StatusIncomplete:
		sub.Status = status
	default:
		return fmt.Errorf("stripefake: unknown subscription status %q", status)
	}
	return nil
}

func (s *Server) subscriptionJSON(sub *subscription) map[string]any {
	start, end := sub.period(time.Unix(s.clock().Unix(), 0))
	var data []any
	currency := "usd"
	for i, id := range sub.Items {
		si := s.items[id]
		if i == 0 {
			currency = s.prices[si.Price].Currency
		}
		if i < embeddedItems {
			data = append(data, s.itemJSON(si))
		}
	}
	items := listJSON("/v1/subscription_items?subscription="+sub.ID, data, len(sub.Items) > embeddedItems)
	items["total_count"] = len(sub.Items)
	return map[string]any{
		"id": sub.ID, "object": "subscription", "livemode": false, "customer": sub.Customer, "status": sub.Status,
		"created": sub.Created, "start_date": sub.StartDate, "billing_cycle_anchor": sub.Anchor,
		"current_period_start": start, "current_period_end": end,
		"cancel_at_period_end": sub.CancelAtPeriodEnd, "cancel_at": nullableTime(sub.CancelAt),
		"canceled_at": nullableTime(sub.CanceledAt), "ended_at": nullableTime(sub.EndedAt),
		"trial_start": nullableTime(sub.TrialStart), "trial_end": nullableTime(sub.TrialEnd),
		"collection_method": "charge_automatically", "currency": currency,
		"metadata": maps.Clone(sub.Metadata), "items": items,
	}
}

func (s *Server) itemJSON(si *subscriptionItem) map[string]any {
	out := map[string]any{
		"id": si.ID, "object": "subscription_item", "created": si.Created, "subscription": si.Subscription,
		"price": priceJSON(s.prices[si.Price]), "metadata": maps.Clone(si.Metadata), "quantity": nil,
		"tax_rates": []any{}, "billing_thresholds": nil,
	}
	if si.Quantity != nil {
		out["quantity"] = *si.Quantity
	}
	return out
}

func removeID(ids []string, id string) []string {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}
