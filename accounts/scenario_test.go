package accounts_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/testclock"
)

// A scenario builds a Stripe history in the fake, through the API and in time order (the
// test clock, which the fake reads, is set to each event's time), and keeps the truth: each customer's plan over
// time. Syncs are events too, so they see Stripe exactly as it was at their moment.

// Times of the big scenario: the checked window starts at w; syncs run at s0, t1, t2.
var (
	w  = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	s0 = w.Add(-12 * time.Hour)
	t1 = w.Add(30 * time.Hour)
	t2 = w.Add(72 * time.Hour)
	// Upgrades at exactly 14:00 and at 14:20:07 on the second day.
	upgradeOnHour  = w.Add(38 * time.Hour)
	upgradeMidHour = w.Add(38*time.Hour + 20*time.Minute + 7*time.Second)
)

// planKeys are the lookup keys (or, for "meta-enterprise", a price whose product carries
// neonmeter_plan) that put a subscription on each plan.
var planKeys = map[string][]string{
	"free":       {"free"},
	"pro":        {"pro", "pro_annual"},
	"enterprise": {"enterprise", "enterprise_annual", "meta-enterprise"},
}

type truthChange struct {
	at   time.Time
	plan string
}

type scenarioCustomer struct {
	n        int
	id       string
	created  time.Time
	projects []string
	truth    []truthChange
	// set while the history runs
	subID, planItem string
}

type event struct {
	at  time.Time
	seq int
	do  func()
}

type scenario struct {
	t         testing.TB
	clock     *testclock.Clock
	sc        *client.API
	prices    map[string]string
	customers []*scenarioCustomer
	events    []event
	// onHour and midHour are customers upgraded at 14:00:00 and 14:20:07, with old and new plan.
	onHour, midHour []*scenarioCustomer
}

func (s *scenario) at(t time.Time, do func()) {
	s.events = append(s.events, event{at: t.UTC().Truncate(time.Second), seq: len(s.events), do: do})
}

// run plays every event in time order.
func (s *scenario) run() {
	sort.SliceStable(s.events, func(i, j int) bool {
		if !s.events[i].at.Equal(s.events[j].at) {
			return s.events[i].at.Before(s.events[j].at)
		}
		return s.events[i].seq < s.events[j].seq
	})
	for _, e := range s.events {
		s.clock.Set(e.at)
		e.do()
	}
}

func newScenario(t testing.TB, clock *testclock.Clock, sc *client.API) *scenario {
	s := &scenario{t: t, clock: clock, sc: sc, prices: map[string]string{}}
	clock.Set(w.Add(-800 * time.Hour))
	product := func(name string, meta map[string]string) string {
		p := &stripe.ProductParams{Name: stripe.String(name)}
		for k, v := range meta {
			p.AddMetadata(k, v)
		}
		prod, err := sc.Products.New(p)
		if err != nil {
			t.Fatalf("product: %v", err)
		}
		return prod.ID
	}
	price := func(key, prod, lookup string) {
		p := &stripe.PriceParams{Currency: stripe.String("usd"), Product: stripe.String(prod), UnitAmount: stripe.Int64(1000),
			Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}
		if lookup != "" {
			p.LookupKey = stripe.String(lookup)
		}
		pr, err := sc.Prices.New(p)
		if err != nil {
			t.Fatalf("price %s: %v", key, err)
		}
		s.prices[key] = pr.ID
	}
	for _, plan := range []string{"free", "pro", "enterprise"} {
		prod := product("Neon "+plan, nil)
		for _, key := range planKeys[plan] {
			if key != "meta-enterprise" {
				price(key, prod, key)
			}
		}
	}
	price("meta-enterprise", product("Enterprise (custom contract)", map[string]string{accounts.MetadataPlanKey: "enterprise"}), "")
	addons := product("Support add-ons", nil)
	for i := range 11 {
		price(fmt.Sprintf("addon-%d", i), addons, fmt.Sprintf("support-addon-%d", i))
	}
	return s
}

func (s *scenario) randomKey(rng *rand.Rand, except string) (plan, key string) {
	plans := []string{"free", "pro", "enterprise"}
	for {
		plan = plans[rng.IntN(3)]
		if plan != except {
			keys := planKeys[plan]
			return plan, keys[rng.IntN(len(keys))]
		}
	}
}

func randBetween(rng *rand.Rand, a, b time.Time) time.Time {
	return a.Add(time.Duration(rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
}

// addCustomers adds n customers with random histories (see the comments inside).
func (s *scenario) addCustomers(n int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range n {
		c := &scenarioCustomer{n: len(s.customers), created: w.Add(-48*time.Hour - time.Duration(rng.Int64N(int64(550*time.Hour)))).Truncate(time.Second)}
		s.customers = append(s.customers, c)
		np := 1
		switch r := rng.Float64(); {
		case r < 0.1:
			np = 3
		case r < 0.3:
			np = 2
		}
		for k := range np {
			c.projects = append(c.projects, fmt.Sprintf("p-%05d-%d", c.n, k))
		}
		c.truth = []truthChange{{c.created, ""}}
		s.at(c.created, func() { s.createCustomer(c) })

		switch r := rng.Float64(); {
		case r < 0.05: // a customer without a subscription: the default plan
			continue
		case r < 0.07: // a subscription whose first payment never succeeded: never in force
			s.at(c.created.Add(time.Hour), func() { s.subscribe(c, "pro", false, true, 0) })
			continue
		}
		trial := rng.Float64() < 0.05
		addons := 0
		if rng.Float64() < 0.1 {
			addons = 1
		}
		if i == 7 {
			addons = 11 // more items than a subscription embeds: listed page by page
		}
		start := randBetween(rng, c.created.Add(10*time.Minute), c.created.Add(20*time.Hour))
		phase := 0
		if rng.Float64() < 0.25 { // subscribes later, while the syncs run
			start = randBetween(rng, s0.Add(time.Minute), t2.Add(-time.Hour))
			phase = 1
			if start.After(t1) {
				phase = 2
			}
		}
		plan, key := s.randomKey(rng, "")
		c.truth = append(c.truth, truthChange{start, plan})
		s.at(start, func() { s.subscribe(c, key, trial, false, addons) })
		last := start

		// An upgrade replaces the plan item; only in a later phase than the subscription's
		// start (a sync must have seen the plan it replaces).
		if phase < 2 && rng.Float64() < 0.2 {
			from := s0
			if phase == 1 {
				from = t1
			}
			up := randBetween(rng, from.Add(time.Minute), t2.Add(-2*time.Hour))
			switch {
			case len(s.onHour) < 10 && phase == 0:
				up = upgradeOnHour
				s.onHour = append(s.onHour, c)
			case len(s.midHour) < 10 && phase == 0:
				up = upgradeMidHour
				s.midHour = append(s.midHour, c)
			}
			newPlan, newKey := s.randomKey(rng, plan)
			c.truth = append(c.truth, truthChange{up, newPlan})
			s.at(up, func() { s.replacePlan(c, newKey) })
			last = up
		}
		if rng.Float64() < 0.12 { // cancelled
			end := randBetween(rng, maxTime(last, s0).Add(time.Minute), t2.Add(-time.Hour))
			c.truth = append(c.truth, truthChange{end, ""})
			s.at(end, func() { s.cancel(c) })
			if rng.Float64() < 0.4 { // and back on another subscription
				again := randBetween(rng, end.Add(time.Minute), t2)
				plan, key := s.randomKey(rng, "")
				c.truth = append(c.truth, truthChange{again, plan})
				s.at(again, func() { s.subscribe(c, key, false, false, 0) })
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *scenario) createCustomer(c *scenarioCustomer) {
	p := &stripe.CustomerParams{Email: stripe.String(fmt.Sprintf("c%d@example.com", c.n))}
	md := c.projects[0]
	for _, p := range c.projects[1:] {
		md += ", " + p
	}
	p.AddMetadata(accounts.MetadataProjectKey, md)
	cu, err := s.sc.Customers.New(p)
	if err != nil {
		s.t.Fatalf("customer %d: %v", c.n, err)
	}
	c.id = cu.ID
}

func (s *scenario) subscribe(c *scenarioCustomer, key string, trial, incomplete bool, addons int) {
	p := &stripe.SubscriptionParams{Customer: stripe.String(c.id), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(s.prices[key])}}}
	for i := range addons {
		p.Items = append(p.Items, &stripe.SubscriptionItemsParams{Price: stripe.String(s.prices[fmt.Sprintf("addon-%d", i)])})
	}
	if trial {
		p.TrialPeriodDays = stripe.Int64(30)
	}
	if incomplete {
		p.PaymentBehavior = stripe.String("default_incomplete")
	}
	sub, err := s.sc.Subscriptions.New(p)
	if err != nil {
		s.t.Fatalf("subscribe %d: %v", c.n, err)
	}
	c.subID, c.planItem = sub.ID, sub.Items.Data[0].ID
}

// replacePlan upgrades or downgrades by deleting the plan item and adding the new price, as
// Stripe's subscription update does with items[0][deleted] and a new items[1][price].
func (s *scenario) replacePlan(c *scenarioCustomer, key string) {
	sub, err := s.sc.Subscriptions.Update(c.subID, &stripe.SubscriptionParams{ProrationBehavior: stripe.String("create_prorations"),
		Items: []*stripe.SubscriptionItemsParams{{ID: stripe.String(c.planItem), Deleted: stripe.Bool(true)}, {Price: stripe.String(s.prices[key])}}})
	if err != nil {
		s.t.Fatalf("replace plan of %d: %v", c.n, err)
	}
	for _, it := range sub.Items.Data {
		if it.Price.ID == s.prices[key] {
			c.planItem = it.ID
		}
	}
}

func (s *scenario) cancel(c *scenarioCustomer) {
	if _, err := s.sc.Subscriptions.Cancel(c.subID, nil); err != nil {
		s.t.Fatalf("cancel %d: %v", c.n, err)
	}
}

// expected is the truth for a project at instant at, as an Assignment with default plan "free".
func (c *scenarioCustomer) expected(project string, at time.Time) accounts.Assignment {
	a := accounts.Assignment{ProjectID: project, Plan: "free", Default: true}
	for _, tc := range c.truth {
		if tc.at.After(at) {
			break
		}
		a.CustomerID, a.Since = c.id, tc.at
		a.Plan, a.Default = tc.plan, tc.plan == ""
		if a.Default {
			a.Plan = "free"
		}
	}
	return a
}
