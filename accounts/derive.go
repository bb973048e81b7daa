package accounts

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// Stripe metadata keys neonmeter reads.
const (
	// MetadataProjectKey on a customer lists its Neon project ids, comma or space separated.
	MetadataProjectKey = "neon_project_id"
	// MetadataPlanKey on a product names the plan its prices put a subscription on, for prices
	// without a catalog lookup_key.
	MetadataPlanKey = "neonmeter_plan"
)

// Basis records where a change's time came from: the value of account_history.basis.
type Basis string

// Bases of changes.
const (
	BasisCustomerCreated   Basis = "customer_created"
	BasisSubscriptionStart Basis = "subscription_start"
	BasisItemCreated       Basis = "item_created"
	// BasisPlanAssumed marks the stretch of a subscription before its current plan item was
	// created: Stripe no longer shows the item it replaced, so the current plan is assumed.
	// It is recorded only for a project without history there.
	BasisPlanAssumed       Basis = "subscription_start_plan_assumed"
	BasisSubscriptionEnded Basis = "subscription_ended"
	BasisObserved          Basis = "observed"
	BasisImported          Basis = "imported"
)

// originalItemSlack is how much later than its subscription an item may be created and still
// count as one of the subscription's original items (Stripe creates both in one request).
const originalItemSlack = 5 * time.Second

// Snapshot is what Stripe holds at one moment: the inputs of Derive.
type Snapshot struct {
	Customers     []Customer
	Subscriptions []Subscription
	// ProductPlans maps product ids to their metadata neonmeter_plan, when set.
	ProductPlans map[string]string
}

// Customer is a Stripe customer with the Neon projects its metadata names.
type Customer struct {
	ID      string
	Created time.Time
	// ProjectsMetadata is the raw neon_project_id value.
	ProjectsMetadata string
}

// Subscription is a Stripe subscription with its items.
type Subscription struct {
	ID         string
	CustomerID string
	Status     string
	Created    time.Time
	Start      time.Time
	// EndedAt is set once the subscription ended (canceled).
	EndedAt time.Time
	Items   []Item
}

// Item is a subscription item and its price.
type Item struct {
	ID        string
	Created   time.Time
	PriceID   string
	LookupKey string
	ProductID string
}

// State is who owns a project and on which plan. Plan "" means the customer has no plan in
// force (the default plan applies); CustomerID "" means nobody owns the project.
type State struct {
	CustomerID string
	Plan       string
	// SubscriptionID is informational: two states with the same customer and plan are equal.
	SubscriptionID string
}

// Same reports whether two states put a project with the same customer on the same plan.
func (s State) Same(o State) bool { return s.CustomerID == o.CustomerID && s.Plan == o.Plan }

// Change is a state taking effect at an instant.
type Change struct {
	At time.Time
	State
	Basis Basis
}

// Derived is every project's timeline as Stripe shows it.
type Derived struct {
	// Projects maps a project id to its changes, oldest first. Consecutive changes may carry
	// the same state (an assumed plan, then the instant Stripe knows): Diff records only those
	// that change what is stored.
	Projects map[string][]Change
	// Skip lists projects whose Stripe data is contradictory: sync leaves their history alone.
	Skip map[string]bool
	// Problems explain every skipped project, subscription or value.
	Problems []Problem
}

// Problem is something in Stripe's data neonmeter cannot use as it stands.
type Problem struct {
	CustomerID     string
	SubscriptionID string
	ProjectID      string
	Message        string
}

func (p Problem) String() string {
	var parts []string
	if p.CustomerID != "" {
		parts = append(parts, "customer "+p.CustomerID)
	}
	if p.SubscriptionID != "" {
		parts = append(parts, "subscription "+p.SubscriptionID)
	}
	if p.ProjectID != "" {
		parts = append(parts, "project "+p.ProjectID)
	}
	return strings.Join(parts, " ") + ": " + p.Message
}

// InForce reports whether a subscription in this status puts its customer on its plan:
// active and trialing do, and past_due does while Stripe retries the payment. unpaid, paused
// and the incomplete states do not; canceled did until ended_at.
func InForce(status string) bool {
	switch status {
	case "active", "trialing", "past_due":
		return true
	}
	return false
}

// segment is one subscription's plan over [from, to); a zero to is open-ended.
type segment struct {
	from, to time.Time
	plan     string
	sub      string
	basis    Basis
}

// Derive turns a Stripe snapshot into each project's timeline. It is pure.
//
// Per customer, the timeline starts with no plan at the customer's creation; each
// subscription in force (or canceled, until its ended_at) contributes its plan from its start
// (or from the creation of its plan item when that item was added later, as an upgrade that
// replaces the item does). Where subscriptions overlap, the one that started last wins. The
// customer's timeline is then every project's timeline in its metadata.
func Derive(snap Snapshot, cat *plans.Catalog) Derived {
	d := Derived{Projects: map[string][]Change{}, Skip: map[string]bool{}}
	segs := map[string][]segment{}
	for _, sub := range snap.Subscriptions {
		segs[sub.CustomerID] = append(segs[sub.CustomerID], d.segments(sub, cat, snap.ProductPlans)...)
	}
	owner := map[string]string{}
	created := map[string]time.Time{}
	for _, cu := range sortedCustomers(snap.Customers) {
		created[cu.ID] = cu.Created
		for _, p := range splitProjects(cu.ProjectsMetadata) {
			switch {
			case !neon.ValidID(p):
				d.Problems = append(d.Problems, Problem{CustomerID: cu.ID, ProjectID: p,
					Message: fmt.Sprintf("metadata %s names %q, which is not a Neon project id", MetadataProjectKey, p)})
			case owner[p] != "" && owner[p] != cu.ID:
				d.Problems = append(d.Problems, Problem{CustomerID: cu.ID, ProjectID: p,
					Message: "project is also claimed by customer " + owner[p] + "; its history is left as it is until one of them drops it"})
				d.Skip[p] = true
			default:
				owner[p] = cu.ID
			}
		}
	}
	timelines := map[string][]Change{}
	for p, cus := range owner {
		if d.Skip[p] {
			continue
		}
		tl, ok := timelines[cus]
		if !ok {
			tl = customerTimeline(cus, created[cus], segs[cus])
			timelines[cus] = tl
		}
		d.Projects[p] = tl
	}
	sort.SliceStable(d.Problems, func(i, j int) bool { return d.Problems[i].String() < d.Problems[j].String() })
	return d
}

// segments work out which plan a subscription puts its customer on, and when: from its start,
// or, when its plan item was added later (an upgrade that replaced the item), from that item's
// creation, with the current plan assumed before it; until ended_at for a canceled one.
func (d *Derived) segments(sub Subscription, cat *plans.Catalog, productPlans map[string]string) []segment {
	if !InForce(sub.Status) && (sub.Status != "canceled" || sub.EndedAt.IsZero()) {
		return nil
	}
	var (
		plan string
		item Item
		n    int
	)
	for _, it := range sub.Items {
		name, known := itemPlan(it, cat, productPlans)
		if name == "" {
			continue
		}
		if !known {
			d.Problems = append(d.Problems, Problem{CustomerID: sub.CustomerID, SubscriptionID: sub.ID,
				Message: fmt.Sprintf("product %s names plan %q in metadata %s, which the catalog does not have", it.ProductID, name, MetadataPlanKey)})
			return nil
		}
		if n > 0 && name != plan {
			d.Problems = append(d.Problems, Problem{CustomerID: sub.CustomerID, SubscriptionID: sub.ID,
				Message: fmt.Sprintf("items put the subscription on two plans, %s and %s", plan, name)})
			return nil
		}
		if n == 0 || it.Created.After(item.Created) {
			item = it
		}
		plan = name
		n++
	}
	if n == 0 {
		return nil // no plan price: a subscription to something else
	}
	var end time.Time
	if sub.Status == "canceled" {
		end = sub.EndedAt
	}
	var out []segment
	add := func(from, to time.Time, basis Basis) {
		if to.IsZero() || to.After(from) {
			out = append(out, segment{from: from, to: to, plan: plan, sub: sub.ID, basis: basis})
		}
	}
	if item.Created.After(sub.Created.Add(originalItemSlack)) && item.Created.After(sub.Start) {
		gapEnd := item.Created
		if !end.IsZero() && end.Before(gapEnd) {
			gapEnd = end
		}
		add(sub.Start, gapEnd, BasisPlanAssumed)
		add(item.Created, end, BasisItemCreated)
		return out
	}
	add(sub.Start, end, BasisSubscriptionStart)
	return out
}

// itemPlan returns the plan an item's price names: its lookup_key in the catalog, else its
// product's neonmeter_plan metadata. known is false for a metadata name the catalog lacks.
func itemPlan(it Item, cat *plans.Catalog, productPlans map[string]string) (plan string, known bool) {
	if p, ok := cat.PlanForLookupKey(it.LookupKey); ok && it.LookupKey != "" {
		return p.Name, true
	}
	name := productPlans[it.ProductID]
	if name == "" {
		return "", false
	}
	_, ok := cat.Plan(name)
	return name, ok
}

// customerTimeline merges a customer's subscription segments into changes of state.
func customerTimeline(cus string, created time.Time, segs []segment) []Change {
	bounds := []time.Time{created}
	for _, s := range segs {
		bounds = append(bounds, s.from)
		if !s.to.IsZero() {
			bounds = append(bounds, s.to)
		}
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i].Before(bounds[j]) })
	var out []Change
	for i, b := range bounds {
		if i > 0 && b.Equal(bounds[i-1]) {
			continue
		}
		c := Change{At: b, State: State{CustomerID: cus}, Basis: BasisCustomerCreated}
		var best *segment
		for k := range segs {
			s := &segs[k]
			if s.from.After(b) || (!s.to.IsZero() && !s.to.After(b)) {
				continue
			}
			// The latest start wins; an item's own stretch beats the assumed one it follows.
			if best == nil || s.from.After(best.from) || (s.from.Equal(best.from) && (s.sub > best.sub || best.basis == BasisPlanAssumed)) {
				best = s
			}
		}
		switch {
		case best != nil:
			c.Plan, c.SubscriptionID = best.plan, best.sub
			c.Basis = best.basis
			if !best.from.Equal(b) {
				c.Basis = BasisSubscriptionEnded // another subscription ended and this one shows through
			}
		case i > 0:
			c.Basis = BasisSubscriptionEnded
		}
		out = append(out, c)
	}
	return out
}

func splitProjects(md string) []string {
	fields := strings.FieldsFunc(md, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' })
	seen := map[string]bool{}
	var out []string
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// sortedCustomers orders customers by creation then id, so the first claim on a project is the
// oldest customer's whatever order Stripe listed them in.
func sortedCustomers(cs []Customer) []Customer {
	out := append([]Customer(nil), cs...)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
