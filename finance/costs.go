package finance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"os"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/neonmeter/neonmeter/plans"
)

// Costs is a validated cost table (NEONMETER_COSTS_FILE): what Neon charges the platform per
// unit of each metric, and what each plan charges its customers per billing unit of each of its
// Stripe meters or prices. Amounts are integers in micro-units of Currency (1e-6), so every sum
// is exact. Build it with LoadCosts or ParseCosts; its methods only read.
type Costs struct {
	File     string
	Currency string
	// NeonPlan names the platform's own Neon plan the prices are from (informational).
	NeonPlan string
	// Neon is Neon's price by metric.
	Neon map[string]UnitCost
	// Prices are the plans' customer prices: plan → metric → price.
	Prices map[string]map[string]UnitPrice
}

// UnitCost is Neon's price of one unit of a metric.
type UnitCost struct {
	Metric string
	// Unit is the unit as written, like "CU-hour"; Divisor is how many raw units it holds.
	Unit    string
	Divisor uint64
	// Micros is the price of one unit in micro-units of the currency.
	Micros uint64
}

// Of returns the cost of raw units of the metric in micro-units: floor(raw × Micros ÷ Divisor),
// exact (128-bit intermediate). ok is false when the result does not fit in 63 bits.
func (u UnitCost) Of(raw uint64) (micros int64, ok bool) { return mulDiv(raw, u.Micros, u.Divisor) }

// UnitPrice is a plan's price of one billing unit of a metric, as the catalog bills it.
type UnitPrice struct {
	Plan, Metric string
	// Target is the Stripe meter event name or legacy price id the catalog bills the metric to.
	Target   string
	Unit     string
	Divisor  uint64
	Rounding plans.Rounding
	Micros   uint64
}

// Units returns the billing units raw usage makes, as billing rounds a period's total.
func (p UnitPrice) Units(raw uint64) uint64 { return p.Rounding.Units(raw, p.Divisor) }

// Of returns the revenue of raw usage over one period: Units(raw) × Micros.
func (p UnitPrice) Of(raw uint64) (micros int64, ok bool) { return mulDiv(p.Units(raw), p.Micros, 1) }

// Cost returns Neon's cost of raw units of metric; ok is false for a metric the table does not
// price (it costs nothing known).
func (c *Costs) Cost(metric string, raw uint64) (int64, bool) {
	u, ok := c.Neon[metric]
	if !ok {
		return 0, false
	}
	return u.Of(raw)
}

// Price returns the plan's price of metric, if the table declares one.
func (c *Costs) Price(plan, metric string) (UnitPrice, bool) {
	p, ok := c.Prices[plan][metric]
	return p, ok
}

// LoadCosts reads and validates the cost table at path against the plan catalog.
func LoadCosts(path string, cat *plans.Catalog) (*Costs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cost table: %w", err)
	}
	return ParseCosts(path, data, cat)
}

type fileCosts struct {
	Version  *int                          `yaml:"version"`
	Currency string                        `yaml:"currency"`
	NeonPlan string                        `yaml:"neon_plan"`
	Neon     map[string]fileUnitCost       `yaml:"neon"`
	Plans    map[string]map[string]decimal `yaml:"plans"`
}

type fileUnitCost struct {
	Unit  string  `yaml:"unit"`
	Price decimal `yaml:"price"`
}

// decimal keeps a price as written, with its line, so "0.16" is parsed exactly, never as a float.
type decimal struct {
	text string
	line int
	set  bool
}

func (d *decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a price must be a single number like 0.16", n.Line)}}
	}
	d.text, d.line, d.set = n.Value, n.Line, true
	return nil
}

var currencyPattern = regexp.MustCompile(`^[a-z]{3}$`)

// ParseCosts validates a cost table held in data; name is used in problems (a file name). A
// bad table returns a *plans.ValidationError naming the file and field of every problem.
func ParseCosts(name string, data []byte, cat *plans.Catalog) (*Costs, error) {
	var raw fileCosts
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, &plans.ValidationError{Problems: []plans.Problem{{File: name, Message: err.Error()}}}
	}
	v := &costChecker{file: name}
	c := &Costs{File: name, Currency: raw.Currency, NeonPlan: raw.NeonPlan, Neon: map[string]UnitCost{}, Prices: map[string]map[string]UnitPrice{}}
	if raw.Version == nil || *raw.Version != 1 {
		v.add(0, "version", "must be 1")
	}
	if !currencyPattern.MatchString(raw.Currency) {
		v.add(0, "currency", "must be a lower-case ISO 4217 code like usd, got %q", raw.Currency)
	}
	if len(raw.Neon) == 0 {
		v.add(0, "neon", "must price at least one metric")
	}
	for _, m := range slices.Sorted(maps.Keys(raw.Neon)) {
		if u, ok := v.unitCost(m, raw.Neon[m]); ok {
			c.Neon[m] = u
		}
	}
	for _, plan := range slices.Sorted(maps.Keys(raw.Plans)) {
		c.Prices[plan] = v.planPrices(cat, plan, raw.Plans[plan])
	}
	fillUnpriced(c, cat)
	if len(v.problems) > 0 {
		return nil, &plans.ValidationError{Problems: v.problems}
	}
	return c, nil
}

type costChecker struct {
	file     string
	problems []plans.Problem
}

func (v *costChecker) add(line int, field, format string, a ...any) {
	v.problems = append(v.problems, plans.Problem{File: v.file, Line: line, Field: field, Message: fmt.Sprintf(format, a...)})
}

func (v *costChecker) unitCost(metric string, f fileUnitCost) (UnitCost, bool) {
	field := "neon." + metric
	info, ok := plans.LookupMetric(metric)
	if !ok || !info.Billable() {
		v.add(f.Price.line, field, "unknown metric: not one of the Neon metrics usage_hourly holds that add up over hours")
		return UnitCost{}, false
	}
	div, err := plans.UnitFactor(info.Dimension, f.Unit)
	if err != nil {
		v.add(f.Price.line, field+".unit", "%v", err)
		return UnitCost{}, false
	}
	micros, ok := v.price(f.Price, field+".price")
	if hi, lo := bits.Mul64(div, micros); ok && (hi != 0 || lo > math.MaxInt64) {
		v.add(f.Price.line, field+".price", "too large for its unit: price × raw units per %s must stay below 2^63 micro-units", f.Unit)
		return UnitCost{}, false
	}
	return UnitCost{Metric: metric, Unit: f.Unit, Divisor: div, Micros: micros}, ok
}

func (v *costChecker) price(d decimal, field string) (uint64, bool) {
	if !d.set {
		v.add(d.line, field, "missing")
		return 0, false
	}
	micros, err := ParseMicros(d.text)
	if err != nil {
		v.add(d.line, field, "%v", err)
		return 0, false
	}
	return micros, true
}

// planPrices resolves a plan's prices, keyed by the catalog's meter event names or legacy price
// ids, to the metrics the catalog bills to them.
func (v *costChecker) planPrices(cat *plans.Catalog, plan string, targets map[string]decimal) map[string]UnitPrice {
	out := map[string]UnitPrice{}
	var p *plans.Plan
	if cat != nil {
		var ok bool
		if p, ok = cat.Plan(plan); !ok {
			v.add(0, "plans."+plan, "unknown plan: the catalog has %v", cat.Names())
			return out
		}
	}
	for _, target := range slices.Sorted(maps.Keys(targets)) {
		field := "plans." + plan + "." + target
		micros, ok := v.price(targets[target], field)
		if !ok || p == nil {
			continue
		}
		found := false
		for _, m := range slices.Sorted(maps.Keys(p.Billing)) {
			b := p.Billing[m]
			if b.MeterEventName == target || b.PriceID == target {
				found = true
				out[m] = UnitPrice{Plan: plan, Metric: m, Target: target, Unit: b.Unit, Divisor: b.Divisor, Rounding: b.Rounding, Micros: micros}
			}
		}
		if !found {
			v.add(targets[target].line, field, "unknown meter or price: plan %q bills nothing to it", plan)
		}
	}
	return out
}

// fillUnpriced prices at 0 every metric a catalog plan bills that the file does not price, so
// its billed units still show (and earn nothing).
func fillUnpriced(c *Costs, cat *plans.Catalog) {
	if cat == nil {
		return
	}
	for _, p := range cat.Plans {
		for m, b := range p.Billing {
			if _, ok := c.Prices[p.Name][m]; ok {
				continue
			}
			if c.Prices[p.Name] == nil {
				c.Prices[p.Name] = map[string]UnitPrice{}
			}
			target := b.MeterEventName + b.PriceID
			c.Prices[p.Name][m] = UnitPrice{Plan: p.Name, Metric: m, Target: target, Unit: b.Unit, Divisor: b.Divisor, Rounding: b.Rounding}
		}
	}
}
