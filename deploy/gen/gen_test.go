package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed copies are what the generator writes from their sources, and no stale dashboard
// copy is left: a change to the rules, a dashboard or the example catalog without
// `go run ./deploy/gen` fails here.
func TestKubernetes_GeneratedFilesCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	want, err := generated(root)
	if err != nil {
		t.Fatal(err)
	}
	for rel, b := range want {
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Errorf("%s: %v (run go run ./deploy/gen)", rel, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from its source: run go run ./deploy/gen", rel)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(root, dashboardsOut, "*.json"))
	for _, p := range copies {
		rel, _ := filepath.Rel(root, p)
		if _, ok := want[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s has no source in dashboards/: run go run ./deploy/gen", rel)
		}
	}
}

// write on a scratch tree produces what generated returns and removes a stale copy.
func TestKubernetes_GenWritesAndPrunes(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		rulesFile:                    "# c\ngroups:\n  - name: g\n    rules:\n\n      - alert: A\n        expr: up == 0\n",
		"dashboards/a.json":          "{}",
		"plans/example.yaml":         "plans: {}\n",
		dashboardsOut + "/gone.json": "{}",
	}
	for f, s := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := write(root); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(root, dashboardsOut, "*.json"))
	if len(left) != 1 || filepath.Base(left[0]) != "a.json" {
		t.Errorf("dashboard copies after write: %v, want only a.json", left)
	}
	rule, err := os.ReadFile(filepath.Join(root, ruleOut))
	if err != nil {
		t.Fatal(err)
	}
	wantTail := "spec:\n  groups:\n    - name: g\n      rules:\n\n        - alert: A\n          expr: up == 0\n"
	if !bytes.HasSuffix(rule, []byte(wantTail)) {
		t.Errorf("PrometheusRule ends\n%s\nwant the groups indented under spec:\n%s", rule, wantTail)
	}
	if _, err := prometheusRule([]byte("rules: []\n")); err == nil {
		t.Error("a rules file without groups was accepted")
	}
}
