package plans_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/plans"
)

// FuzzParseCatalog feeds any file to the catalog parser. A refused file is a *ValidationError
// whose every problem names the file and locates itself (a line or a field); parsing is
// deterministic; an accepted catalog holds to every rule docs/plans-and-accounts.md states.
func FuzzParseCatalog(f *testing.F) {
	seeds, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no broken catalogs: %v", err)
	}
	for _, name := range append(seeds, "example.yaml") {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("version: 1\nplans:\n  - name: p\n    limits:\n      active_time_seconds: {kind: none}\n"))
	f.Add([]byte("version: 1\nplans:\n  - &a {name: p}\n  - *a\n"))
	f.Add([]byte("version: 1\nwarn_at: [50, 100, 1000]\nplans: [{name: p, billing: {compute_unit_seconds: {meter: m, unit: CU-hour, rounding: ceil}}, limits: {compute_unit_seconds: {kind: soft, max: 0.5 CU-h}}}]\n"))
	f.Add([]byte("version: 1\nplans:\n  - name: p\n    neon: {suspend_timeout: never}\n---\nversion: 2\n"))
	f.Add([]byte("version: 1\nplans:\n  - name: p\n\tlimits: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		c, err := plans.Parse("fuzz.yaml", data)
		if _, again := plans.Parse("fuzz.yaml", data); errText(err) != errText(again) {
			t.Fatalf("two parses differ:\n%v\n%v", err, again)
		}
		if err != nil {
			checkProblems(t, err, data)
			return
		}
		checkCatalog(t, c)
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkProblems: every problem names the file, says something, and is located by a line
// inside the file or by a field.
func checkProblems(t *testing.T, err error, data []byte) {
	t.Helper()
	var ve *plans.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("error %v is not a *ValidationError with problems", err)
	}
	lines := strings.Count(string(data), "\n") + 1
	for _, p := range ve.Problems {
		switch {
		case p.File != "fuzz.yaml" || !strings.HasPrefix(p.String(), "fuzz.yaml"):
			t.Fatalf("problem %q does not name the file", p)
		case strings.TrimSpace(p.Message) == "":
			t.Fatalf("problem %+v says nothing", p)
		case p.Line < 0 || p.Line > lines:
			t.Fatalf("problem %q on line %d of a %d-line file", p, p.Line, lines)
		case p.Line == 0 && p.Field == "":
			t.Fatalf("problem %q has neither a line nor a field", p)
		}
	}
}

var (
	planName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	meterName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$`)
)

func checkCatalog(t *testing.T, c *plans.Catalog) {
	t.Helper()
	if len(c.Plans) == 0 {
		t.Fatal("accepted a catalog without plans")
	}
	for i, p := range c.Plans {
		if !planName.MatchString(p.Name) || slices.Contains(c.Names()[:i], p.Name) {
			t.Fatalf("accepted plan name %q (plans %v)", p.Name, c.Names())
		}
		if got, ok := c.Plan(p.Name); !ok || got != p {
			t.Fatalf("Plan(%q) does not return the plan", p.Name)
		}
		if len(p.LookupKeys) == 0 {
			t.Fatalf("plan %s has no lookup key", p.Name)
		}
		for _, k := range p.LookupKeys {
			if got, _ := c.PlanForLookupKey(k); got != p || k == "" || len(k) > 200 || strings.ContainsAny(k, " \t\r\n") {
				t.Fatalf("lookup key %q of plan %s", k, p.Name)
			}
		}
		checkNeon(t, p)
		for m, l := range p.Limits {
			checkLimit(t, p, m, l)
		}
		checkBilling(t, p)
	}
}

func checkNeon(t *testing.T, p *plans.Plan) {
	t.Helper()
	n := p.Neon
	finite := !math.IsNaN(n.MinCU) && !math.IsInf(n.MinCU, 0) && !math.IsNaN(n.MaxCU) && !math.IsInf(n.MaxCU, 0)
	switch {
	case n.ManageAutoscaling && !(finite && n.MinCU >= 0.25 && n.MinCU <= n.MaxCU):
		t.Fatalf("plan %s: accepted CU %v–%v", p.Name, n.MinCU, n.MaxCU)
	case !n.ManageAutoscaling && (n.MinCU != 0 || n.MaxCU != 0):
		t.Fatalf("plan %s: CU %v–%v without managing autoscaling", p.Name, n.MinCU, n.MaxCU)
	case n.ManageSuspend && n.SuspendTimeoutSeconds != -1 && (n.SuspendTimeoutSeconds < 60 || n.SuspendTimeoutSeconds > 604800):
		t.Fatalf("plan %s: accepted suspend timeout %d", p.Name, n.SuspendTimeoutSeconds)
	case !n.ManageSuspend && n.SuspendTimeoutSeconds != 0:
		t.Fatalf("plan %s: suspend timeout %d without managing it", p.Name, n.SuspendTimeoutSeconds)
	}
}

func checkLimit(t *testing.T, p *plans.Plan, m string, l plans.Limit) {
	t.Helper()
	if _, known := plans.LookupMetric(m); !known || l.Metric != m {
		t.Fatalf("plan %s: limit %+v under %q", p.Name, l, m)
	}
	switch {
	case l.Kind != plans.KindHard && l.Kind != plans.KindSoft && l.Kind != plans.KindNone:
		t.Fatalf("plan %s: limit kind %q", p.Name, l.Kind)
	case l.Unlimited && (l.Kind != plans.KindNone || l.Max != 0):
		t.Fatalf("plan %s: unlimited %+v", p.Name, l)
	case !l.Unlimited && (l.Max == 0 || l.Max > 1<<60):
		t.Fatalf("plan %s: limit max %d", p.Name, l.Max)
	case len(l.WarnAt) == 0:
		t.Fatalf("plan %s: limit %s without warning thresholds", p.Name, m)
	}
	if _, billed := p.Billing[m]; l.Kind == plans.KindSoft && !billed {
		t.Fatalf("plan %s: soft limit of %s, which it does not bill", p.Name, m)
	}
	for i, w := range l.WarnAt {
		if w < 1 || w > 1000 || i > 0 && w <= l.WarnAt[i-1] {
			t.Fatalf("plan %s: warn_at %v", p.Name, l.WarnAt)
		}
	}
	th := l.Thresholds()
	for i, x := range th {
		if x.Value > l.Max*10 || x.Value == 0 || i > 0 && x.Value < th[i-1].Value {
			t.Fatalf("plan %s: thresholds %v of max %d", p.Name, th, l.Max)
		}
	}
}

func checkBilling(t *testing.T, p *plans.Plan) {
	t.Helper()
	meters := map[string]bool{}
	for m, b := range p.Billing {
		mi, known := plans.LookupMetric(m)
		switch {
		case !known || !mi.Billable() || b.Metric != m:
			t.Fatalf("plan %s bills %q: %+v", p.Name, m, b)
		case (b.MeterEventName == "") == (b.PriceID == ""):
			t.Fatalf("plan %s: %s has meter %q and price %q", p.Name, m, b.MeterEventName, b.PriceID)
		case b.MeterEventName != "" && (!meterName.MatchString(b.MeterEventName) || meters[b.MeterEventName]):
			t.Fatalf("plan %s: meter %q", p.Name, b.MeterEventName)
		case b.PriceID != "" && !strings.HasPrefix(b.PriceID, "price_"):
			t.Fatalf("plan %s: price %q", p.Name, b.PriceID)
		case b.Divisor == 0 || b.Rounding != plans.RoundFloor && b.Rounding != plans.RoundCeil:
			t.Fatalf("plan %s: %s divisor %d rounding %q", p.Name, m, b.Divisor, b.Rounding)
		}
		if b.MeterEventName != "" {
			meters[b.MeterEventName] = true
		}
	}
}

// The YAML library gives no line for a problem on a file's first line, for bad characters and
// for an unknown anchor, and counts its parser's lines from 0: every problem still gets the
// 1-based line it is on (found by FuzzParseCatalog: a file of `"` had neither line nor field).
func TestParse_YAMLProblemLines(t *testing.T) {
	for _, tc := range []struct {
		src  string
		line int
		msg  string
	}{
		{`"`, 1, "unexpected end of stream"},
		{"{", 1, "did not find expected node content"},
		{"version: 1\nplans: {c: 1\n", 2, "did not find expected ',' or '}'"},
		{"version: 1\n- b\n", 2, "did not find expected key"},
		{"version: 1\nplans: \xff\n", 2, "invalid leading UTF-8 octet"},
		{"version: 1\nplans: []\n\x01\n", 3, "control characters"},
		{"version: &x 1\nwarn_at: [80]\nplans: *y\n", 3, "unknown anchor 'y'"},
		{"version: 1\nplans:\n  - name: p\n    limits: {active_time_seconds: {kind: hard, max: 100h}\n", 4, "did not find expected ',' or '}'"},
	} {
		_, err := plans.Parse("q.yaml", []byte(tc.src))
		var ve *plans.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if p := ve.Problems[0]; p.Line != tc.line || !strings.Contains(p.Message, tc.msg) {
			t.Errorf("%q: problem %q on line %d, want line %d and %q", tc.src, p, p.Line, tc.line, tc.msg)
		}
	}
}
