package accounts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
)

func cus(id string, created time.Time, projects string) accounts.Customer {
	return accounts.Customer{ID: id, Created: created, ProjectsMetadata: projects}
}

func sub(id, customer, status string, start time.Time, items ...accounts.Item) accounts.Subscription {
	return accounts.Subscription{ID: id, CustomerID: customer, Status: status, Created: start, Start: start, Items: items}
}

func ended(s accounts.Subscription, at time.Time) accounts.Subscription {
	s.Status, s.EndedAt = "canceled", at
	return s
}

func item(id, lookupKey string, created time.Time) accounts.Item {
	return accounts.Item{ID: id, Created: created, PriceID: "price_" + id, LookupKey: lookupKey, ProductID: "prod_" + lookupKey}
}

// cus1 is Stripe's state when it holds one customer, cus_1, created two days before the day of
// the test and owning projects, with subs: most cases vary only these.
func cus1(projects string, subs ...accounts.Subscription) accounts.Snapshot {
	return accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), projects)}, Subscriptions: subs}
}

func stored(project string, at time.Time, customer, plan string) accounts.Record {
	return accounts.Record{ProjectID: project, ValidFrom: at, CustomerID: customer, Plan: plan, Source: accounts.SourceStripe}
}

// Each case is Stripe's state (and what is stored) → the changes a sync appends.
func TestDeriveDiff(t *testing.T) {
	cat := catalog(t)
	observed := h(30) // the sync runs the next day at 06:00
	tests := []struct {
		name     string
		snap     accounts.Snapshot
		stored   []accounts.Record
		want     string
		problems []string
	}{{
		name: "new customer with two projects on pro",
		snap: cus1("p-a, p-b", sub("sub_1", "cus_1", "active", h(-47), item("i1", "pro", h(-47)))),
		want: `p-a 02-28T00:00:00 cus_1/ customer_created
		       p-a 02-28T01:00:00 cus_1/pro subscription_start
		       p-b 02-28T00:00:00 cus_1/ customer_created
		       p-b 02-28T01:00:00 cus_1/pro subscription_start`,
	}, {
		name:   "second sync writes nothing",
		snap:   cus1("p-a", sub("sub_1", "cus_1", "active", h(-47), item("i1", "pro", h(-47)))),
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "pro")},
		want:   ``,
	}, {
		name:   "upgrade at 14:00 by replacing the item is recorded at 14:00",
		snap:   cus1("p-a", sub("sub_1", "cus_1", "active", h(-47), item("i2", "pro", h(14)))),
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "free")},
		want:   `p-a 03-02T14:00:00 cus_1/pro item_created`,
	}, {
		name: "upgrade seen by a first sync: the current plan is assumed from the start",
		snap: cus1("p-a", sub("sub_1", "cus_1", "active", h(-47), item("i2", "pro", h(14)))),
		want: `p-a 02-28T00:00:00 cus_1/ customer_created
		       p-a 02-28T01:00:00 cus_1/pro subscription_start_plan_assumed`,
	}, {
		name:   "price swapped in place: no instant, recorded when observed",
		snap:   cus1("p-a", sub("sub_1", "cus_1", "active", h(-47), item("i1", "enterprise", h(-47)))),
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "pro")},
		want:   `p-a 03-03T06:00:00 cus_1/enterprise observed`,
	}, {
		name: "cancellation recorded at ended_at, resubscription at its start",
		snap: cus1("p-a",
			ended(sub("sub_1", "cus_1", "", h(-47), item("i1", "pro", h(-47))), h(9.5)),
			sub("sub_2", "cus_1", "active", h(20), item("i2", "free", h(20))),
		),
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "pro")},
		want: `p-a 03-02T09:30:00 cus_1/ subscription_ended
		       p-a 03-02T20:00:00 cus_1/free subscription_start`,
	}, {
		name: "trialing and past_due are in force; unpaid, incomplete and expired are not",
		snap: accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), "p-a"), cus("cus_2", h(-48), "p-b"),
			cus("cus_3", h(-48), "p-c"), cus("cus_4", h(-48), "p-d")},
			Subscriptions: []accounts.Subscription{
				sub("sub_1", "cus_1", "trialing", h(1), item("i1", "pro", h(1))),
				sub("sub_2", "cus_2", "past_due", h(1), item("i2", "pro", h(1))),
				sub("sub_3", "cus_3", "unpaid", h(1), item("i3", "pro", h(1))),
				sub("sub_4", "cus_4", "incomplete_expired", h(1), item("i4", "pro", h(1))),
			}},
		stored: []accounts.Record{stored("p-a", h(-48), "cus_1", ""), stored("p-b", h(-48), "cus_2", ""),
			stored("p-c", h(1), "cus_3", "pro"), stored("p-d", h(-48), "cus_4", "")},
		want: `p-a 03-02T01:00:00 cus_1/pro subscription_start
		       p-b 03-02T01:00:00 cus_2/pro subscription_start
		       p-c 03-03T06:00:00 cus_3/ observed`,
	}, {
		name: "product metadata names the plan when the lookup key does not; other products are ignored",
		snap: accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), "p-a")},
			Subscriptions: []accounts.Subscription{sub("sub_1", "cus_1", "active", h(2),
				accounts.Item{ID: "i1", Created: h(2), PriceID: "price_x", ProductID: "prod_ent"},
				accounts.Item{ID: "i2", Created: h(2), PriceID: "price_y", LookupKey: "support-addon", ProductID: "prod_addon"})},
			ProductPlans: map[string]string{"prod_ent": "enterprise"}},
		stored: []accounts.Record{stored("p-a", h(-48), "cus_1", "")},
		want:   `p-a 03-02T02:00:00 cus_1/enterprise subscription_start`,
	}, {
		name: "project removed from metadata (or its customer deleted) becomes unowned when observed",
		snap: cus1("p-a"),
		stored: []accounts.Record{stored("p-a", h(-48), "cus_1", ""), stored("p-gone", h(-40), "cus_9", "pro"),
			{ProjectID: "p-csv", ValidFrom: h(-40), CustomerID: "cus_8", Plan: "pro", Source: accounts.SourceCSV}},
		want: `p-gone 03-03T06:00:00 / observed`,
	}, {
		name: "project moved to another customer",
		snap: accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), ""), cus("cus_2", h(-100), "p-a")},
			Subscriptions: []accounts.Subscription{sub("sub_2", "cus_2", "active", h(-99), item("i2", "enterprise", h(-99)))}},
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "pro")},
		want:   `p-a 03-03T06:00:00 cus_2/enterprise observed`,
	}, {
		name: "overlapping subscriptions: the later start wins, the older shows again when it ends",
		snap: cus1("p-a",
			sub("sub_1", "cus_1", "active", h(-47), item("i1", "pro", h(-47))),
			ended(sub("sub_2", "cus_1", "", h(3), item("i2", "enterprise", h(3))), h(8)),
		),
		stored: []accounts.Record{stored("p-a", h(-47), "cus_1", "pro")},
		want: `p-a 03-02T03:00:00 cus_1/enterprise subscription_start
		       p-a 03-02T08:00:00 cus_1/pro subscription_ended`,
	}, {
		name: "contradictions are reported and leave history alone",
		snap: accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), "p-a,Bad_ID"), cus("cus_2", h(-30), "p-a, p-b"),
			cus("cus_3", h(-30), "p-c"), cus("cus_4", h(-30), "p-d")},
			Subscriptions: []accounts.Subscription{
				sub("sub_3", "cus_3", "active", h(1), item("i3", "pro", h(1)), item("i4", "enterprise", h(1))),
				sub("sub_4", "cus_4", "active", h(1), accounts.Item{ID: "i5", Created: h(1), ProductID: "prod_z"}),
			}, ProductPlans: map[string]string{"prod_z": "platinum"}},
		stored: []accounts.Record{stored("p-a", h(-48), "cus_1", "pro"), stored("p-c", h(-30), "cus_3", ""), stored("p-d", h(-30), "cus_4", "")},
		want:   `p-b 02-28T18:00:00 cus_2/ customer_created`,
		problems: []string{
			`customer cus_1 project Bad_ID: metadata neon_project_id names "Bad_ID", which is not a Neon project id`,
			`customer cus_2 project p-a: project is also claimed by customer cus_1`,
			`customer cus_3 subscription sub_3: items put the subscription on two plans, pro and enterprise`,
			`customer cus_4 subscription sub_4: product prod_z names plan "platinum" in metadata neonmeter_plan, which the catalog does not have`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := accounts.Derive(tt.snap, cat)
			st := map[string]accounts.Record{}
			for _, c := range tt.stored {
				st[c.ProjectID] = c
			}
			got := changesText(accounts.Diff(st, d, observed))
			if want := dedent(tt.want); got != want {
				t.Fatalf("changes:\n%s\nwant:\n%s", got, want)
			}
			if len(d.Problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %d", d.Problems, len(tt.problems))
			}
			for i, p := range tt.problems {
				if !strings.HasPrefix(d.Problems[i].String(), p) {
					t.Errorf("problem %d = %q, want %q", i, d.Problems[i], p)
				}
			}
		})
	}
}

// Diffing what was just recorded again writes nothing, whatever the scenario.
func TestDiff_Converges(t *testing.T) {
	cat := catalog(t)
	snap := accounts.Snapshot{Customers: []accounts.Customer{cus("cus_1", h(-48), "p-a,p-b"), cus("cus_2", h(-10), "p-c")},
		Subscriptions: []accounts.Subscription{
			ended(sub("sub_1", "cus_1", "", h(-47), item("i1", "pro", h(-47))), h(9.5)),
			sub("sub_2", "cus_1", "active", h(20), item("i2", "free", h(23))),
			sub("sub_3", "cus_2", "trialing", h(-9), item("i3", "enterprise", h(-9))),
		}}
	d := accounts.Derive(snap, cat)
	st := map[string]accounts.Record{}
	for round := range 3 {
		changes := accounts.Diff(st, d, h(30+float64(round)))
		if round > 0 && len(changes) != 0 {
			t.Fatalf("round %d wrote again:\n%s", round, changesText(changes))
		}
		if round == 0 && len(changes) == 0 {
			t.Fatalf("first round wrote nothing")
		}
		for _, c := range changes {
			st[c.ProjectID] = accounts.Record{ProjectID: c.ProjectID, ValidFrom: c.At, CustomerID: c.CustomerID, Plan: c.Plan, Source: accounts.SourceStripe}
		}
	}
}
