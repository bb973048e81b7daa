package enforcement_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deployDir is the repository's deploy/ folder, relative to this package.
const deployDir = "../deploy"

// run runs a required tool; a missing tool fails the test (CI installs them: scripts/deps.sh).
func run(t *testing.T, dir, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is required (Debian packages prometheus and prometheus-alertmanager): %v", tool, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRules_CheckAndUnitTests(t *testing.T) {
	dir := filepath.Join(deployDir, "prometheus")
	if out := run(t, dir, "promtool", "check", "rules", "neonmeter.rules.yml"); !strings.Contains(out, "SUCCESS: 10 rules found") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	if out := run(t, dir, "promtool", "test", "rules", "neonmeter.rules_test.yml"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

func TestAlertmanagerExample_CheckConfigAndRoutes(t *testing.T) {
	dir := filepath.Join(deployDir, "alertmanager")
	if out := run(t, dir, "amtool", "check-config", "alertmanager.example.yml"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config:\n%s", out)
	}
	for labels, want := range map[string]string{
		"severity=page alertname=NeonmeterEnforcementBreakerTripped": "oncall-pager",
		"severity=ticket alertname=NeonmeterProjectOverQuota":        "team-queue",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.example.yml"}, strings.Fields(labels)...)
		lines := strings.Split(strings.TrimSpace(run(t, dir, "amtool", args...)), "\n")
		if out := lines[len(lines)-1]; out != want { // amtool may print a warning line first
			t.Fatalf("%s routes to %q, want %q", labels, out, want)
		}
	}
}
