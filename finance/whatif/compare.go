package whatif

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/plans"
)

// Measures of enforcement lines; billed-unit lines are measured by their metric's name.
const (
	MeasureWarned    = "projects warned"
	MeasureThrottled = "projects throttled"
	MeasureSuspended = "projects suspended"
)

// AllCustomers is the customer of a plan's total line; Unmapped that of projects nobody owns.
const (
	AllCustomers = "*"
	Unmapped     = "(unmapped)"
)

// Line is one measure of one plan and customer: what happened and what the draft says.
type Line struct {
	Plan     string `json:"plan"`
	Customer string `json:"customer"`
	// Measure is a billed metric (units) or one of the Measure* counts of projects.
	Measure   string `json:"measure"`
	Unit      string `json:"unit"`
	Actual    int64  `json:"actual"`
	Simulated int64  `json:"simulated"`
	Change    int64  `json:"change"`
	// Micros marks money: the values are micro-units of Unit, the cost table's currency.
	Micros bool `json:"micros,omitempty"`
}

// unitProjects is the unit of the enforcement lines.
const unitProjects = "projects"

// Report is a simulated period.
type Report struct {
	Period string    `json:"period"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Lines by plan, then customer (each plan's total first), then measure.
	Lines []Line `json:"lines"`
	// UnknownPlans lists plans in force that the draft lacks: their projects are neither billed
	// nor judged under it (enforcement leaves such projects alone).
	UnknownPlans []string `json:"unknown_plans,omitempty"`
}

// lineKey identifies a line before totals.
type lineKey struct{ plan, customer, measure string }

// tally accumulates lines; units are checked, never wrapped.
type tally struct {
	lines map[lineKey]*Line
	units map[string]string
}

func (t *tally) add(k lineKey, unit string, actual, simulated int64) error {
	l := t.lines[k]
	if l == nil {
		l = &Line{Plan: k.plan, Customer: k.customer, Measure: k.measure, Unit: unit}
		t.lines[k] = l
	}
	var ok1, ok2 bool
	l.Actual, ok1 = addChecked(l.Actual, actual)
	l.Simulated, ok2 = addChecked(l.Simulated, simulated)
	if !ok1 || !ok2 {
		return fmt.Errorf("units of customer %s, %s beyond int64", k.customer, k.measure)
	}
	return nil
}

func addChecked(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}

// Compare re-rates in under draft and sets it beside what happened, with revenue, cost and
// margin when money is not nil. It is pure.
func Compare(in *Inputs, draft *plans.Catalog, pol enforcement.Policy, money *Money) (*Report, error) {
	t := &tally{lines: map[lineKey]*Line{}, units: unitsOf(draft)}
	last := in.To.Add(-time.Hour)
	owners := customerPlans(in.Timeline, last, in.From)
	if err := compareBilling(t, in, draft, owners); err != nil {
		return nil, err
	}
	if money != nil {
		if err := addMoney(t, in, money, last); err != nil {
			return nil, err
		}
	}
	unknown := compareEnforcement(t, in, draft, pol, last)
	rep := &Report{Period: in.From.Format("2006-01"), From: in.From, To: in.To, UnknownPlans: unknown}
	lines, err := withTotals(t.lines)
	if err != nil {
		return nil, err
	}
	rep.Lines = lines
	return rep, nil
}

// customerPlans is each customer's plan for the report: the plan in force at the period's last
// hour for its first project (sorted), else at the period's start.
func customerPlans(tl *accounts.Timelines, at ...time.Time) map[string]string {
	out := map[string]string{}
	for _, instant := range at {
		for _, p := range tl.Projects() {
			a := tl.At(p, instant)
			if _, seen := out[a.CustomerID]; a.Mapped() && !seen {
				out[a.CustomerID] = a.Plan
			}
		}
	}
	return out
}

// compareBilling adds the units of every (customer, metric): billing.Desired under the draft,
// and the ledger's accounted values (what Stripe plus late adjustments hold).
func compareBilling(t *tally, in *Inputs, draft *plans.Catalog, owners map[string]string) error {
	vals, err := billing.Desired(in.Usage, in.Timeline, draft, in.From, in.To)
	if err != nil {
		return err
	}
	for _, v := range vals {
		k := lineKey{owners[v.CustomerID], v.CustomerID, v.Metric}
		if err := t.add(k, unitOf(t.units, in.CurrentUnits, v.Metric), 0, v.Units); err != nil {
			return err
		}
	}
	for _, r := range in.Ledger {
		k := lineKey{owners[r.CustomerID], r.CustomerID, r.Metric}
		if err := t.add(k, unitOf(t.units, in.CurrentUnits, r.Metric), r.Accounted, 0); err != nil {
			return err
		}
	}
	return nil
}

// unitOf names a metric's unit; "old→new" when the draft bills it in another unit.
func unitOf(draft, current map[string]string, metric string) string {
	d, c := draft[metric], current[metric]
	switch {
	case d == "":
		return c
	case c == "" || c == d:
		return d
	}
	return c + "→" + d
}

// compareEnforcement judges every project with usage by enforcement.Evaluate under the draft, at
// the period's end with no memory and no grace (usage only grows within a period, so its end
// shows the worst level reached), and counts it beside its audited outcome. It returns the
// plans in force the draft lacks.
func compareEnforcement(t *tally, in *Inputs, draft *plans.Catalog, pol enforcement.Policy, last time.Time) []string {
	pol.Grace = 0
	desired := map[string]*enforcement.Desired{}
	for _, u := range in.Periods {
		d := desired[u.ProjectID]
		if d == nil {
			d = &enforcement.Desired{ProjectID: u.ProjectID, OrgID: u.OrgID, PeriodStart: in.From, Fresh: true, Usage: map[string]uint64{}}
			desired[u.ProjectID] = d
		}
		d.Usage[u.Metric] = u.Judged()
	}
	unknown := map[string]bool{}
	for id, d := range desired {
		a := in.Timeline.At(id, last)
		d.Plan, _ = draft.Plan(a.Plan)
		if d.Plan == nil {
			unknown[a.Plan] = true
		}
		v := enforcement.Evaluate(*d, pol, in.To)
		countOutcome(t, a, v.Level, v.Target.Status == enforcement.StatusThrottled, v.Target.Status == enforcement.StatusSuspended, false)
	}
	for _, o := range in.Outcomes {
		countOutcome(t, in.Timeline.At(o.ProjectID, last), o.Level, o.Throttled, o.Suspended, true)
	}
	out := make([]string, 0, len(unknown))
	for p := range unknown {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// countOutcome counts one project's level and status on its plan and customer's lines.
func countOutcome(t *tally, a accounts.Assignment, l enforcement.Level, throttled, suspended, actual bool) {
	cus := a.CustomerID
	if cus == "" {
		cus = Unmapped
	}
	count := func(measure string, yes bool) {
		if !yes {
			return
		}
		var act, sim int64 = 0, 1
		if actual {
			act, sim = 1, 0
		}
		_ = t.add(lineKey{a.Plan, cus, measure}, unitProjects, act, sim) // counts of projects cannot wrap
	}
	count(MeasureWarned, l == enforcement.LevelWarning || l == enforcement.LevelOver)
	count(MeasureThrottled, throttled)
	count(MeasureSuspended, suspended)
}

// withTotals sorts the lines and adds each plan's total per measure (customer AllCustomers).
func withTotals(lines map[lineKey]*Line) ([]Line, error) {
	totals := map[lineKey]*Line{}
	out := make([]Line, 0, len(lines)*2)
	for k, l := range lines {
		l.Change = l.Simulated - l.Actual
		out = append(out, *l)
		tk := lineKey{k.plan, AllCustomers, k.measure}
		tl := totals[tk]
		if tl == nil {
			tl = &Line{Plan: k.plan, Customer: AllCustomers, Measure: k.measure, Unit: l.Unit, Micros: l.Micros}
			totals[tk] = tl
		}
		var ok1, ok2 bool
		tl.Actual, ok1 = addChecked(tl.Actual, l.Actual)
		tl.Simulated, ok2 = addChecked(tl.Simulated, l.Simulated)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("plan %s total of %s beyond int64", k.plan, k.measure)
		}
	}
	for _, tl := range totals {
		tl.Change = tl.Simulated - tl.Actual
		out = append(out, *tl)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Plan != b.Plan {
			return a.Plan < b.Plan
		}
		if a.Customer != b.Customer {
			return a.Customer == AllCustomers || (b.Customer != AllCustomers && a.Customer < b.Customer)
		}
		return a.Measure < b.Measure
	})
	return out, nil
}
