package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/finance/whatif"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// TestPlansSimulate_UsageCatalogAndFormats: bad flags and bad drafts exit 2 naming the file and
// field; a valid draft prints the comparison as a table, CSV or JSON and exits 0.
func TestPlansSimulate_UsageCatalogAndFormats(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	_, db := chtest.New(t)
	t.Setenv("NEONMETER_CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("NEONMETER_CLICKHOUSE_DATABASE", db)
	t.Setenv("NEONMETER_PLANS_FILE", "../../plans/example.yaml")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", "version: 1\nplans:\n  - name: free\n    limits:\n      compute_unit_seconds: {kind: hard, max: -5}\n")
	noCU := write("nocu.yaml", "version: 1\nplans:\n  - name: free\n    limits:\n      compute_unit_seconds: {kind: soft, max: 5 CU-hour}\n"+
		"    billing:\n      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}\n")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--period", "2026-11"}, []string{"--catalog"}},
		{[]string{"--catalog", "../../plans/example.yaml", "--period", "november"}, []string{"--period", "2026-11"}},
		{[]string{"--catalog", "../../plans/example.yaml", "--period", "2026-11", "--format", "xml"}, []string{"xml", "table, csv or json"}},
		{[]string{"--catalog", bad, "--period", "2026-11"}, []string{bad, "limits.compute_unit_seconds.max"}},
		{[]string{"--catalog", noCU, "--period", "2026-11"}, []string{noCU, "autoscaling_max_cu"}},
		{[]string{"--catalog", filepath.Join(dir, "missing.yaml"), "--period", "2026-11"}, []string{"missing.yaml"}},
	} {
		code, out, errOut := run(t, ctx, append([]string{"plans", "simulate"}, c.args...)...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.args, code, exitUsage, out, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
	draft := []string{"plans", "simulate", "--catalog", "../../plans/example.yaml", "--period", "2026-11"}
	if code, out, errOut := run(t, ctx, draft...); code != exitOK || !strings.Contains(out, "period 2026-11") {
		t.Fatalf("table: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, ctx, append(draft, "--format", "csv")...); code != exitOK ||
		!strings.HasPrefix(out, "plan,customer,measure,unit,actual,simulated,change\n") {
		t.Fatalf("csv: exit %d\n%s%s", code, out, errOut)
	}
	badCosts := write("costs.yaml", "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: -1}\n")
	if code, out, errOut := run(t, ctx, append(draft, "--costs", badCosts)...); code != exitUsage || !strings.Contains(errOut, badCosts) ||
		!strings.Contains(errOut, "neon.compute_unit_seconds.price") {
		t.Errorf("bad cost table: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, ctx, append(draft, "--costs", "../../finance/example-costs.yaml", "--format", "csv")...); code != exitOK {
		t.Errorf("with the example cost table: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, ctx, append(draft, "--format", "json")...)
	var rep whatif.Report
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || rep.Period != "2026-11" {
		t.Fatalf("json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
}
