package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/neon/sim"
)

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstMatch returns the first group of re in s, failing the test when re does not match.
func firstMatch(t *testing.T, s, re, what string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s: no match for %s", what, re)
	}
	return m[1]
}

// README's first run must use the ports and names make and the tools really use: it once
// pointed at ClickHouse on 9000 while make starts it on 19000.
func TestReadme_FirstRunMatchesMake(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	chPort := firstMatch(t, readRepoFile(t, "Makefile"), `CH_PORT \?= (\d+)`, "Makefile")
	mockPort := firstMatch(t, readRepoFile(t, "scripts/stripe-mock.sh"), `STRIPE_MOCK_PORT:-(\d+)`, "scripts/stripe-mock.sh")
	simAddr := firstMatch(t, readRepoFile(t, "cmd/neonsim/main.go"), `"addr", "([0-9.:]+)"`, "cmd/neonsim")
	block := firstMatch(t, readme, "(?s)### First run, on this machine\n.*?```sh\n(.*?)```", "README first run")

	for _, want := range []string{
		"NEONMETER_CLICKHOUSE_ADDR=127.0.0.1:" + chPort,
		"NEONMETER_STRIPE_API_URL=http://127.0.0.1:" + mockPort,
		"NEONMETER_NEON_API_URL=http://" + simAddr + "/api/v2",
		"make clickhouse stripe-mock build",
		"bin/neonmeter migrate",
	} {
		if !strings.Contains(block, want) {
			t.Errorf("README's first run lacks %q", want)
		}
	}
	simKey := firstMatch(t, block, `--api-key (\S+)`, "neonsim key")
	if !strings.Contains(block, "NEONMETER_NEON_API_KEY="+simKey) {
		t.Errorf("README's neonmeter key differs from neonsim's --api-key %s", simKey)
	}
	org := firstMatch(t, block, `NEONMETER_NEON_ORG_ID=(\S+)`, "org id")
	s, err := sim.New(sim.Config{Projects: 200})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Orgs(), func(o sim.Org) bool { return o.ID == org }) {
		t.Errorf("README's org %s is not one neonsim serves", org)
	}
	known := map[string]bool{}
	for _, c := range (&Main{}).commands() {
		known[c.name] = true
	}
	for _, m := range regexp.MustCompile(`bin/neonmeter (\w+)`).FindAllStringSubmatch(readme, -1) {
		if !known[m[1]] {
			t.Errorf("README runs unknown command %q", m[1])
		}
	}
	for _, stale := range []string{"127.0.0.1:9000 ", "127.0.0.1:9000\n", "localhost:9000"} {
		if strings.Contains(readme, stale) {
			t.Errorf("README still points at ClickHouse %q, not make's %s", strings.TrimSpace(stale), chPort)
		}
	}
}

// The image defaulted to the example catalog, whose price ids are placeholders.
func TestDockerfile_ShipsNoCatalog(t *testing.T) {
	df := readRepoFile(t, "Dockerfile")
	if strings.Contains(df, "plans/example.yaml") || strings.Contains(df, "NEONMETER_PLANS_FILE=") {
		t.Fatalf("the Dockerfile ships or selects a plan catalog:\n%s", df)
	}
}

// Without a catalog, serve and config say plainly that only collection runs.
func TestServe_SaysWhenNoCatalog(t *testing.T) {
	configEnv(t)
	t.Chdir(t.TempDir()) // no plans.yaml here
	var logs bytes.Buffer
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := servedCatalog(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || cat != nil {
		t.Fatalf("no catalog: %v, %v", cat, err)
	}
	for _, want := range []string{"no plan catalog", "NEONMETER_PLANS_FILE", "billing and enforcement are off"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("serve's warning lacks %q: %s", want, logs.String())
		}
	}
	code, out, errOut := run(t, context.Background(), "config")
	if code != exitOK || !strings.Contains(out, "serve will only collect") {
		t.Errorf("config without a catalog: exit %d\n%s%s", code, out, errOut)
	}
}
