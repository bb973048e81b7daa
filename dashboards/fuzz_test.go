package dashboards_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/dashboards"
)

// FuzzExpandMacros: an expansion leaves no macro, replaces each $__timeFilter(column) by the
// two bounds on that column and nothing else; a refusal names the unexpanded query.
func FuzzExpandMacros(f *testing.F) {
	for _, d := range dashboards.All() {
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				if t.RawSQL != "" {
					f.Add(t.RawSQL, int64(1778371200), int64(1778392800))
				}
			}
		}
	}
	f.Add("SELECT 1 FROM t WHERE $__timeFilter(hour) AND x = 1", int64(10), int64(20))
	f.Add("SELECT $__interval_s", int64(1), int64(2))
	f.Add("$_$__timeFilter(_)", int64(-1), int64(0))
	f.Add("$__timeFilter(Hour) $__timeFilter(a)$__timeFilter(b_c)", int64(-9223372036854775808), int64(9223372036854775807))
	macro := regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`)
	f.Fuzz(func(t *testing.T, sql string, from, to int64) {
		if len(sql) > 16<<10 {
			return
		}
		out, err := dashboards.ExpandMacros(sql, from, to)
		if err != nil {
			if !strings.Contains(err.Error(), "unexpanded macro") {
				t.Fatalf("error %q does not say what is wrong", err)
			}
			return
		}
		if strings.Contains(out, "$__") {
			t.Fatalf("expanded %q to %q, which holds a macro", sql, out)
		}
		want := macro.ReplaceAllStringFunc(sql, func(m string) string {
			col := macro.FindStringSubmatch(m)[1]
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, from, col, to)
		})
		if out != want {
			t.Fatalf("expanded %q to %q, want %q", sql, out, want)
		}
	})
}

// FuzzExpandVariables: Variables lists exactly the names ExpandVariables needs: given a value
// for each it succeeds and leaves no reference to them; without one, the error names it.
func FuzzExpandVariables(f *testing.F) {
	for _, d := range dashboards.All() {
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				if t.RawSQL != "" {
					f.Add(t.RawSQL)
				}
			}
		}
	}
	f.Add("SELECT * FROM t WHERE c = '${customer}' AND m = $metric AND $__timeFilter(hour)")
	f.Add("${a}${a}$a $b_1 ${__x} $$c ${d")
	f.Fuzz(func(t *testing.T, query string) {
		if len(query) > 16<<10 {
			return
		}
		names := dashboards.Variables(query)
		vars := map[string]string{}
		for i, n := range names {
			if strings.HasPrefix(n, "__") || vars[n] != "" {
				t.Fatalf("Variables(%q) = %v", query, names)
			}
			vars[n] = fmt.Sprintf("«v%d»", i)
		}
		out, err := dashboards.ExpandVariables(query, vars)
		if err != nil {
			t.Fatalf("ExpandVariables(%q) with every variable: %v", query, err)
		}
		for n := range vars {
			if strings.Contains(out, "${"+n+"}") {
				t.Fatalf("%q still references %s: %q", query, n, out)
			}
		}
		if len(names) == 0 {
			if out != query {
				t.Fatalf("no variables, yet %q became %q", query, out)
			}
			return
		}
		delete(vars, names[0])
		if _, err := dashboards.ExpandVariables(query, vars); err == nil || !strings.Contains(err.Error(), names[0]) {
			t.Fatalf("without %s: %v", names[0], err)
		}
	})
}
