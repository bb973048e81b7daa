package whatif

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/neonmeter/neonmeter/finance"
)

// Money measures, in micro-units of the cost table's currency (Line.Micros).
const (
	MeasureRevenue = "revenue"
	MeasureCost    = "neon cost"
	MeasureMargin  = "margin"
)

// Money is the cost table (NEONMETER_COSTS_FILE) checked against each catalog: the actual units
// are priced as the current catalog bills them, the simulated ones as the draft does. Neon's
// cost of the usage is the same on both sides.
type Money struct {
	Current, Draft *finance.Costs
}

// addMoney adds revenue (billed units × the plan's price), Neon's cost (each project's raw usage
// at Neon's prices, on its plan and customer at the period's last hour) and their difference, per
// plan and customer. Free-plan customers show as pure cost.
func addMoney(t *tally, in *Inputs, m *Money, last time.Time) error {
	type money struct{ revenueA, revenueS, cost int64 }
	byOwner := map[lineKey]*money{}
	at := func(plan, customer string) *money {
		k := lineKey{plan, customer, ""}
		if byOwner[k] == nil {
			byOwner[k] = &money{}
		}
		return byOwner[k]
	}
	for k, l := range t.lines {
		if l.Unit == unitProjects {
			continue
		}
		cur, _ := m.Current.Price(k.plan, k.measure)
		dft, _ := m.Draft.Price(k.plan, k.measure)
		a, okA := timesMicros(l.Actual, cur.Micros)
		s, okS := timesMicros(l.Simulated, dft.Micros)
		o := at(k.plan, k.customer)
		var ok1, ok2 bool
		o.revenueA, ok1 = addChecked(o.revenueA, a)
		o.revenueS, ok2 = addChecked(o.revenueS, s)
		if !okA || !okS || !ok1 || !ok2 {
			return fmt.Errorf("revenue of customer %s, %s beyond int64 micro-units", k.customer, k.measure)
		}
	}
	for _, u := range in.Periods {
		a := in.Timeline.At(u.ProjectID, last)
		c, ok := m.Draft.Cost(u.Metric, u.Sum)
		if _, priced := m.Draft.Neon[u.Metric]; priced && !ok {
			return fmt.Errorf("neon cost of project %s, %s beyond int64 micro-units", u.ProjectID, u.Metric)
		}
		cus := a.CustomerID
		if cus == "" {
			cus = Unmapped
		}
		o := at(a.Plan, cus)
		if o.cost, ok = addChecked(o.cost, c); !ok {
			return fmt.Errorf("neon cost of customer %s beyond int64 micro-units", cus)
		}
	}
	cur := m.Draft.Currency
	for k, o := range byOwner {
		marginA, okA := addChecked(o.revenueA, -o.cost)
		marginS, okS := addChecked(o.revenueS, -o.cost)
		if !okA || !okS {
			return fmt.Errorf("margin of customer %s beyond int64 micro-units", k.customer)
		}
		for _, x := range []struct {
			measure string
			a, s    int64
		}{{MeasureRevenue, o.revenueA, o.revenueS}, {MeasureCost, o.cost, o.cost}, {MeasureMargin, marginA, marginS}} {
			if err := t.add(lineKey{k.plan, k.customer, x.measure}, cur, x.a, x.s); err != nil {
				return err
			}
			t.lines[lineKey{k.plan, k.customer, x.measure}].Micros = true
		}
	}
	return nil
}

// timesMicros is units × micros, checked.
func timesMicros(units int64, micros uint64) (int64, bool) {
	neg := units < 0
	u := uint64(units)
	if neg {
		u = uint64(-units)
	}
	hi, lo := bits.Mul64(u, micros)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}
