package testworld

import (
	"context"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// Cell is one (customer, target, hour) of billing; the target is a meter's event name or a
// legacy price.
type Cell struct {
	Customer, Target string
	Hour             time.Time
}

func (c Cell) String() string { return c.Customer + " " + c.Target + " " + c.Hour.Format(time.RFC3339) }

// Truth converts the simulator's ground truth into what billing must push for customers on
// plan, each owning its projects: per customer and target, the hourly sums of its projects over
// [from, to) turned into whole units of the running total counted from from (ClickHouse holds
// nothing earlier; plans.Rounding.Pushes), zeros left out.
func Truth(s *sim.Sim, plan *plans.Plan, owned map[string][]string, from, to time.Time) map[Cell]int64 {
	out := map[Cell]int64{}
	for cus, projects := range owned {
		for metric, b := range plan.Billing {
			var hours []uint64
			for h := from; h.Before(to); h = h.Add(time.Hour) {
				var sum uint64
				for _, p := range projects {
					sum += uint64(s.Value(p, metric, h))
				}
				hours = append(hours, sum)
			}
			for i, u := range b.Rounding.Pushes(hours, b.Divisor) {
				if u != 0 {
					out[Cell{cus, b.MeterEventName + b.PriceID, from.Add(time.Duration(i) * time.Hour)}] += u
				}
			}
		}
	}
	return out
}

// LedgerHolds returns the values the ledger of store records as pushed for hours in [from, to);
// a row in any other status is an error of the test.
func LedgerHolds(t testing.TB, store *billingstore.Store, from, to time.Time) map[Cell]int64 {
	t.Helper()
	rows, err := store.Ledger(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Cell]int64{}
	for _, r := range rows {
		if r.Status != billing.LedgerPushed {
			t.Errorf("ledger row %s %s %s is %s rev %d, want pushed", r.CustomerID, r.Target, r.Hour, r.Status, r.Revision)
			continue
		}
		if r.Value != 0 {
			out[Cell{r.CustomerID, r.Target, r.Hour.UTC()}] = r.Value
		}
	}
	return out
}

// DiffCells fails the test when got and want differ, naming the first ten cells (keys, as %v
// prints them) that do.
func DiffCells[K, V comparable](t testing.TB, what string, got, want map[K]V) {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		if bad < 10 {
			t.Errorf(format, args...)
		}
		bad++
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			report("%s: %v = %v, want %v", what, k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			report("%s: %v = %v, want nothing", what, k, v)
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d cells differ", what, bad)
	}
}
