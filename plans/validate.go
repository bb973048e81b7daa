package plans

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	planNamePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	meterNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$`)
	lookupKeyPattern = regexp.MustCompile(`^\S{1,200}$`)
)

// Neon's bounds (spec: ComputeUnit ≥ 0.25; SuspendTimeoutSeconds −1 or 60 … 604800).
const (
	minCU             = 0.25
	minSuspendTimeout = 60 * time.Second
	maxSuspendTimeout = 604800 * time.Second
	maxWarnPercent    = 1000
)

// checker collects problems, locating each in the YAML tree.
type checker struct {
	file     string
	root     *yaml.Node
	problems []Problem
}

// add records a problem at path (keys and sequence indexes from the document root). For paths
// inside plans[i], plan names the plan and the field is the rest of the path.
func (c *checker) add(plan string, path []any, format string, a ...any) {
	field := path
	if len(path) >= 2 && path[0] == "plans" {
		field = path[2:]
	}
	parts := make([]string, len(field))
	for i, f := range field {
		parts[i] = fmt.Sprint(f)
	}
	c.problems = append(c.problems, Problem{File: c.file, Line: lineOf(c.root, path...), Plan: plan,
		Field: strings.Join(parts, "."), Message: fmt.Sprintf(format, a...)})
}

// lineOf returns the line of the node at path, or of its deepest ancestor present in the file.
func lineOf(root *yaml.Node, path ...any) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range path {
		switch s := step.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || s >= len(n.Content) {
				return line
			}
			n = n.Content[s]
			line = n.Line
		}
	}
	return line
}

// compile checks a decoded file and builds the catalog; any problem means no catalog.
func compile(file string, root *yaml.Node, raw fileCatalog) (*Catalog, []Problem) {
	c := &checker{file: file, root: root}
	switch {
	case raw.Version == nil:
		c.add("", []any{"version"}, "missing; this build reads version %d", CatalogVersion)
	case *raw.Version != CatalogVersion:
		c.add("", []any{"version"}, "unsupported version %d; this build reads version %d", *raw.Version, CatalogVersion)
	}
	warnDefault := DefaultWarnAt()
	if raw.WarnAt != nil {
		if c.checkWarnAt("", []any{"warn_at"}, raw.WarnAt) {
			warnDefault = raw.WarnAt
		}
	}
	if len(raw.Plans) == 0 {
		c.add("", []any{"plans"}, "no plans defined")
	}
	cat := &Catalog{byName: map[string]*Plan{}, byLookup: map[string]*Plan{}}
	firstLine := map[string]int{}
	for i, fp := range raw.Plans {
		p := c.plan(i, fp, warnDefault)
		base := []any{"plans", i}
		label := p.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		if p.Name != "" {
			if line, dup := firstLine[p.Name]; dup {
				c.add(label, append(base, "name"), "duplicate plan name %q (first defined on line %d)", p.Name, line)
				continue
			}
			firstLine[p.Name] = lineOf(root, append(base, "name")...)
			cat.byName[p.Name] = p
		}
		for k, key := range p.LookupKeys {
			if other, dup := cat.byLookup[key]; dup {
				c.add(label, append(base, "stripe", "lookup_keys", k), "lookup key %q already names plan %q", key, other.Name)
				continue
			}
			cat.byLookup[key] = p
		}
		cat.Plans = append(cat.Plans, p)
	}
	if len(c.problems) > 0 {
		sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Line < c.problems[j].Line })
		return nil, c.problems
	}
	return cat, nil
}

func (c *checker) plan(i int, fp filePlan, warnDefault []int) *Plan {
	base := []any{"plans", i}
	at := func(rest ...any) []any { return append(append([]any(nil), base...), rest...) }
	p := &Plan{Name: fp.Name, Description: fp.Description, Limits: map[string]Limit{}, Billing: map[string]Billing{}}
	label := fp.Name
	if label == "" {
		label = fmt.Sprintf("#%d", i+1)
	}
	switch {
	case fp.Name == "":
		c.add(label, at("name"), "missing")
	case !planNamePattern.MatchString(fp.Name):
		c.add(label, at("name"), "%q must be lower-case letters, digits, - and _ (at most 63)", fp.Name)
	}

	p.LookupKeys = fp.Stripe.LookupKeys
	if len(p.LookupKeys) == 0 && fp.Name != "" {
		p.LookupKeys = []string{fp.Name}
	}
	seen := map[string]bool{}
	for k, key := range fp.Stripe.LookupKeys {
		switch {
		case !lookupKeyPattern.MatchString(key):
			c.add(label, at("stripe", "lookup_keys", k), "lookup key %q must be 1 to 200 characters without spaces", key)
		case seen[key]:
			c.add(label, at("stripe", "lookup_keys", k), "lookup key %q listed twice", key)
		}
		seen[key] = true
	}

	if fp.Neon != nil {
		p.Neon = c.neon(label, at, *fp.Neon)
	}

	for _, m := range keysInFileOrder(c.root, at("limits"), fp.Limits) {
		if l, ok := c.limit(label, at, m, fp.Limits[m], warnDefault, fp.Billing); ok {
			p.Limits[m] = l
		}
	}
	meterUsedBy := map[string]string{}
	for _, m := range keysInFileOrder(c.root, at("billing"), fp.Billing) {
		b, ok := c.billing(label, at, m, fp.Billing[m])
		if !ok {
			continue
		}
		if b.MeterEventName != "" {
			if other, dup := meterUsedBy[b.MeterEventName]; dup {
				c.add(label, at("billing", m, "meter"), "meter %q is already used by billing.%s: Stripe keeps one value per customer, meter and hour, so the metrics would overwrite each other", b.MeterEventName, other)
				continue
			}
			meterUsedBy[b.MeterEventName] = m
		}
		p.Billing[m] = b
	}
	return p
}

func (c *checker) neon(label string, at func(...any) []any, fn fileNeon) NeonSettings {
	var s NeonSettings
	switch {
	case fn.MinCU == nil && fn.MaxCU == nil:
	case fn.MinCU == nil:
		c.add(label, at("neon", "autoscaling_min_cu"), "missing (set both autoscaling_min_cu and autoscaling_max_cu, or neither)")
	case fn.MaxCU == nil:
		c.add(label, at("neon", "autoscaling_max_cu"), "missing (set both autoscaling_min_cu and autoscaling_max_cu, or neither)")
	default:
		lo, hi := *fn.MinCU, *fn.MaxCU
		ok := true
		for _, v := range []struct {
			field string
			cu    float64
		}{{"autoscaling_min_cu", lo}, {"autoscaling_max_cu", hi}} {
			if !(v.cu >= minCU) || math.IsInf(v.cu, 0) {
				c.add(label, at("neon", v.field), "%v CU is below Neon's minimum of %v CU", v.cu, minCU)
				ok = false
			}
		}
		if ok && lo > hi {
			c.add(label, at("neon", "autoscaling_min_cu"), "min CU %v is above max CU %v", lo, hi)
			ok = false
		}
		s.ManageAutoscaling, s.MinCU, s.MaxCU = ok, lo, hi
	}
	switch t := strings.TrimSpace(fn.SuspendTimeout); t {
	case "":
	case "never":
		s.ManageSuspend, s.SuspendTimeoutSeconds = true, -1
	default:
		d, err := time.ParseDuration(t)
		switch {
		case err != nil:
			c.add(label, at("neon", "suspend_timeout"), "%q is not a duration like \"5m\" (or \"never\")", t)
		case d%time.Second != 0 || d < minSuspendTimeout || d > maxSuspendTimeout:
			c.add(label, at("neon", "suspend_timeout"), "%s is outside Neon's range of whole seconds from 60s to 168h (or \"never\")", t)
		default:
			s.ManageSuspend, s.SuspendTimeoutSeconds = true, int64(d/time.Second)
		}
	}
	return s
}

func (c *checker) limit(label string, at func(...any) []any, m string, fl fileLimit, warnDefault []int, billing map[string]fileBilling) (Limit, bool) {
	mi, known := LookupMetric(m)
	if !known {
		c.add(label, at("limits", m), "unknown metric %q (known: %s)", m, knownMetrics())
		return Limit{}, false
	}
	l := Limit{Metric: m, Kind: LimitKind(fl.Kind), WarnAt: warnDefault}
	ok := true
	switch l.Kind {
	case KindHard, KindSoft, KindNone:
	case "":
		c.add(label, at("limits", m, "kind"), "missing (hard, soft or none)")
		ok = false
	default:
		c.add(label, at("limits", m, "kind"), "unknown kind %q (use hard, soft or none)", fl.Kind)
		ok = false
	}
	switch {
	case !fl.Max.set && l.Kind == KindNone:
		l.Unlimited = true
	case !fl.Max.set:
		if ok {
			c.add(label, at("limits", m, "max"), "missing: a %s limit needs a maximum", l.Kind)
		}
		ok = false
	default:
		v, err := parseQuantity(mi.Dimension, fl.Max.text)
		switch {
		case err != nil:
			c.add(label, at("limits", m, "max"), "%v", err)
			ok = false
		case v == 0:
			c.add(label, at("limits", m, "max"), "0 is not a limit (for no limit use kind none without max)")
			ok = false
		}
		l.Max = v
	}
	if fl.WarnAt != nil {
		if c.checkWarnAt(label, at("limits", m, "warn_at"), fl.WarnAt) {
			l.WarnAt = fl.WarnAt
		} else {
			ok = false
		}
	}
	if l.Kind == KindSoft {
		if _, billed := billing[m]; !billed {
			c.add(label, at("limits", m, "kind"), "a soft limit bills the overage, but the plan has no billing entry for %s (missing meter)", m)
			ok = false
		}
	}
	l.WarnAt = append([]int(nil), l.WarnAt...)
	return l, ok
}

func (c *checker) checkWarnAt(label string, path []any, w []int) bool {
	if len(w) == 0 {
		c.add(label, path, "empty; omit it for the default %v", DefaultWarnAt())
		return false
	}
	for i, p := range w {
		switch {
		case p <= 0 || p > maxWarnPercent:
			c.add(label, append(path, i), "%d %% is outside 1 … %d", p, maxWarnPercent)
			return false
		case i > 0 && p <= w[i-1]:
			c.add(label, append(path, i), "thresholds must rise: %d %% follows %d %%", p, w[i-1])
			return false
		}
	}
	return true
}

func (c *checker) billing(label string, at func(...any) []any, m string, fb fileBilling) (Billing, bool) {
	mi, known := LookupMetric(m)
	switch {
	case !known:
		c.add(label, at("billing", m), "unknown metric %q (known: %s)", m, knownMetrics())
		return Billing{}, false
	case !mi.Collected():
		c.add(label, at("billing", m), "%s is a project counter that Neon's consumption history does not report per hour, so it cannot be billed", m)
		return Billing{}, false
	case mi.Level:
		c.add(label, at("billing", m), "%s is a size at a moment, not usage that adds up over hours; bill its byte-hour metric instead", m)
		return Billing{}, false
	}
	b := Billing{Metric: m, MeterEventName: fb.Meter, PriceID: fb.Price, Unit: fb.Unit, Rounding: Rounding(fb.Rounding)}
	ok := true
	switch {
	case fb.Meter == "" && fb.Price == "":
		c.add(label, at("billing", m), "missing meter: set meter (a Stripe Billing Meter event name) or price (a legacy metered price id)")
		ok = false
	case fb.Meter != "" && fb.Price != "":
		c.add(label, at("billing", m, "price"), "set either meter or price, not both")
		ok = false
	case fb.Meter != "" && !meterNamePattern.MatchString(fb.Meter):
		c.add(label, at("billing", m, "meter"), "%q is not a meter event name (letters, digits, _ . : -, at most 100)", fb.Meter)
		ok = false
	case fb.Price != "" && !strings.HasPrefix(fb.Price, "price_"):
		c.add(label, at("billing", m, "price"), "%q is not a Stripe price id (price_…)", fb.Price)
		ok = false
	}
	if fb.Unit == "" {
		c.add(label, at("billing", m, "unit"), "missing: the billing unit of %s, like %s", m, unitNames(mi.Dimension))
		ok = false
	} else if d, err := unitFactor(mi.Dimension, fb.Unit); err != nil {
		c.add(label, at("billing", m, "unit"), "%v", err)
		ok = false
	} else {
		b.Divisor = d
	}
	switch b.Rounding {
	case "":
		b.Rounding = RoundFloor
	case RoundFloor, RoundCeil:
	default:
		c.add(label, at("billing", m, "rounding"), "unknown rounding %q (use floor or ceil)", fb.Rounding)
		ok = false
	}
	return b, ok
}

func knownMetrics() string {
	var names []string
	for _, mi := range Metrics() {
		names = append(names, mi.Name)
	}
	return strings.Join(names, ", ")
}

// keysInFileOrder returns the keys of the mapping at path in the order the file lists them, so
// problems that compare entries name the later one.
func keysInFileOrder[V any](root *yaml.Node, path []any, m map[string]V) []string {
	keys := make([]string, 0, len(m))
	line := map[string]int{}
	for k := range m {
		keys = append(keys, k)
		line[k] = lineOf(root, append(append([]any(nil), path...), k)...)
	}
	sort.Slice(keys, func(i, j int) bool {
		if line[keys[i]] != line[keys[j]] {
			return line[keys[i]] < line[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
