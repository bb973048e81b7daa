package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
)

// TestDemo runs the demo end to end on a small fleet: collection, a re-run writing nothing,
// accounts, two billing pushes to stripe-mock (the second sends nothing), enforcement in dry run.
func TestDemo(t *testing.T) {
	clearEnv(t)
	mock := os.Getenv("NEONMETER_TEST_STRIPE_MOCK_URL")
	if mock == "" {
		mock = "http://127.0.0.1:12111"
	}
	conn := chtest.Connect(t)
	for k, v := range map[string]string{
		"NEONMETER_CLICKHOUSE_ADDR":     chtest.Addr(),
		"NEONMETER_CLICKHOUSE_DATABASE": chtest.Database(t, conn),
		"NEONMETER_PLANS_FILE":          exampleCatalog,
		"NEONMETER_STRIPE_API_URL":      mock,
		"NEONMETER_LOG_LEVEL":           "error",
	} {
		t.Setenv(k, v)
	}
	neonsim := filepath.Join(crashtest.Build(t, "../neonsim"), "neonsim")
	code, out, errOut := run(t, context.Background(), "demo", "--projects", "60", "--hours", "6", "--neonsim", neonsim)
	if code != exitOK {
		t.Fatalf("demo: exit %d (stripe-mock must answer at %s: make test starts it)\n%s\n%s", code, mock, out, errOut)
	}
	for _, want := range []string{
		`org-sim-launch\s+launch\s+v2\s+2\s+\d+\s+\d+\s+0\s`, // the second pass writes 0 rows
		`billing push 1 to \S+: [1-9]\d* \(customer, meter, hour\) values decided, [1-9]\d* requests, [1-9]\d* confirmed, 0 pending`,
		`billing push 2 to \S+: 0 \(customer, meter, hour\) values decided, 0 requests`,
		`enforcement \(dry run\): \d+ projects evaluated, .*, 0 applied`,
		`wakes of idle computes \(simulator's counter\): 0\n`,
		`compute_unit_seconds\s+\d+\s+[1-9]\d*`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestBinary_LinksNoSimulator keeps the simulator out of the production binary: the demo drives
// neonsim as a process.
func TestBinary_LinksNoSimulator(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/neonmeter/neonmeter/neon/sim") || strings.HasPrefix(pkg, "github.com/neonmeter/neonmeter/internal/") && strings.Contains(pkg, "test") {
			t.Errorf("the neonmeter binary links %s", pkg)
		}
	}
}
