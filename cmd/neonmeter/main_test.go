package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// run executes neonmeter with args and returns its exit code and outputs.
func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := (&Main{Stdout: &out, Stderr: &errOut}).Run(ctx, args)
	return code, out.String(), errOut.String()
}

// writeTemp writes content to a file called name in a directory of the test's own and returns
// its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRun is run for a step that must succeed: another exit code fails the test. It returns
// the standard output.
func mustRun(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, ctx, args...)
	if code != exitOK {
		t.Fatalf("%s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// clearEnv removes every NEONMETER_ setting of the test process for the duration of the test.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") && !strings.HasPrefix(k, envPrefix+"_TEST_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestMain_UsageAndExitCodes(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	if code, out, _ := run(t, ctx); code != exitUsage || !strings.Contains(out, "collect") {
		t.Fatalf("no arguments: exit %d, want %d with the command list; got %q", code, exitUsage, out)
	}
	if code, out, _ := run(t, ctx, "--help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Fatalf("--help: exit %d, output %q", code, out)
	}
	if code, _, errOut := run(t, ctx, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, ctx, "collect", "--last", "banana"); code != exitUsage || !strings.Contains(errOut, "--last") {
		t.Fatalf("bad flag: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, ctx, "collect", "-h"); code != exitOK || !strings.Contains(errOut, "budgeted cycle") {
		t.Fatalf("collect -h: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := run(t, ctx, "version"); code != exitOK || !strings.HasPrefix(out, "neonmeter ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestConfig_ValidationAndSecrets(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	t.Setenv("NEONMETER_NEON_API_KEY", "sekrit-key-123")
	t.Setenv("NEONMETER_CLICKHOUSE_PASSWORD", "sekrit-pass-456")
	t.Setenv("NEONMETER_NEON_ORG_ID", "org-config-check") // config checks what serve needs
	code, out, errOut := run(t, ctx, "config")
	if code != exitOK {
		t.Fatalf("config with defaults: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"NEONMETER_NEON_API_URL", "https://console.neon.tech/api/v2", "NEONMETER_NEON_API_KEY_FILE", "NEONMETER_CLICKHOUSE_ADDR", "[redacted]"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q", want)
		}
	}
	if strings.Contains(out+errOut, "sekrit") {
		t.Fatalf("config printed a secret:\n%s", out)
	}

	t.Setenv("NEONMETER_LOG_LEVEL", "loud")
	t.Setenv("NEONMETER_NEON_CONSUMPTION_API", "v3")
	t.Setenv("NEONMETER_COLLECT_LOOKBACK", "-1h")
	code, _, errOut = run(t, ctx, "config")
	if code != exitUsage {
		t.Fatalf("bad settings: exit %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"NEONMETER_LOG_LEVEL", "NEONMETER_NEON_CONSUMPTION_API", "NEONMETER_COLLECT_LOOKBACK"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error does not name %s: %s", want, errOut)
		}
	}

	clearEnv(t)
	t.Setenv("NEONMETER_NEON_RATE_TYPO", "1")
	t.Setenv("NEONMETER_NEON_CONSUMPTION_RATE", "fast")
	if code, _, errOut := run(t, ctx, "config"); code != exitUsage || !strings.Contains(errOut, "NEON_CONSUMPTION_RATE") {
		t.Fatalf("unparsable number: exit %d, stderr %q", code, errOut)
	}
}

func TestCollect_RequiresKeyAndOrg(t *testing.T) {
	clearEnv(t)
	code, _, errOut := run(t, context.Background(), "collect")
	if code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_API_KEY") || !strings.Contains(errOut, "NEONMETER_NEON_ORG_ID") {
		t.Fatalf("collect without key and org: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", filepath.Join(t.TempDir(), "missing"))
	if code, _, errOut := run(t, context.Background(), "collect"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_API_KEY_FILE") {
		t.Fatalf("missing key file: exit %d, stderr %q", code, errOut)
	}
}

// simEnv serves a simulator on real HTTP and points the environment at it and at a fresh
// ClickHouse database. It returns the simulator and the database name.
func simEnv(t *testing.T, projects int) (*sim.Sim, string) {
	t.Helper()
	return simEnvKey(t, projects, "cmd-test-key")
}

// simEnvKey is simEnv with the simulator accepting key (written to the key file) instead.
func simEnvKey(t *testing.T, projects int, key string) (*sim.Sim, string) {
	t.Helper()
	clearEnv(t)
	s, err := sim.New(sim.Config{Projects: projects, Seed: 3, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	keyFile := filepath.Join(t.TempDir(), "neon-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	for k, v := range map[string]string{
		"NEONMETER_NEON_API_URL":          srv.URL + "/api/v2",
		"NEONMETER_NEON_API_KEY_FILE":     keyFile,
		"NEONMETER_NEON_ORG_ID":           s.Orgs()[1].ID,
		"NEONMETER_NEON_CONSUMPTION_RATE": "100000",
		"NEONMETER_NEON_GENERAL_RATE":     "100000",
		"NEONMETER_CLICKHOUSE_ADDR":       chtest.Addr(),
		"NEONMETER_CLICKHOUSE_DATABASE":   db,
		"NEONMETER_LOG_LEVEL":             "warn",
	} {
		t.Setenv(k, v)
	}
	t.Cleanup(func() {
		if w := s.Stats().Wakes; w != 0 {
			t.Errorf("commands woke %d idle computes", w)
		}
	})
	return s, db
}

func TestCommands_MigrateCollectStatusBackfill(t *testing.T) {
	s, _ := simEnv(t, 400)
	ctx := context.Background()
	migrations, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, ctx, "migrate"); code != exitOK || !strings.Contains(out, fmt.Sprintf("%d migration(s) applied", len(migrations))) {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := run(t, ctx, "migrate"); code != exitOK || !strings.Contains(out, "0 migration(s) applied") {
		t.Fatalf("second migrate: exit %d, %q", code, out)
	}
	code, out, errOut := run(t, ctx, "collect", "--last", "24h")
	if code != exitOK {
		t.Fatalf("collect: exit %d\n%s\n%s", code, out, errOut)
	}
	org := s.Orgs()[1]
	for _, want := range []string{`outcome\s+success`, fmt.Sprintf(`projects\s+%d\n`, len(org.ProjectIDs)), `wake-risk requests\s+0\n`, `rows written\s+[1-9]`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("collect summary lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, ctx, "collect", "--last", "24h")
	if code != exitOK || !regexp.MustCompile(`rows written\s+0\n`).MatchString(out) {
		t.Fatalf("second collect must write 0 rows: exit %d\n%s", code, out)
	}
	// 24 h collected of the 167 h status looks at: the rest is a gap, and status says so.
	code, out, errOut = run(t, ctx, "status")
	if code != exitFailure || !strings.Contains(out, "gaps (hours no successful sweep covered)") || !strings.Contains(errOut, "neonmeter backfill") {
		t.Fatalf("status with gaps: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, ctx, "status", "--window", "20h"); code != exitOK || !strings.Contains(out, "no gaps") {
		t.Fatalf("status without gaps: exit %d\n%s", code, out)
	}
	from := time.Now().UTC().Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	code, out, _ = run(t, ctx, "backfill", "--from", from, "--dry-run")
	if code != exitOK || !strings.Contains(out, "daily") || !strings.Contains(out, "hourly") {
		t.Fatalf("backfill --dry-run: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, ctx, "backfill"); code != exitUsage || !strings.Contains(errOut, "--from") {
		t.Fatalf("backfill without --from: exit %d %q", code, errOut)
	}
}

func TestCollect_ForbiddenOrgFailsLoudly(t *testing.T) {
	s, _ := simEnv(t, 40)
	t.Setenv("NEONMETER_NEON_ORG_ID", s.Orgs()[0].ID) // the free org: 403
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	code, out, errOut := run(t, ctx, "collect", "--last", "2h")
	if code != exitFailure || !strings.Contains(errOut, "no consumption history") || !regexp.MustCompile(`outcome\s+failed`).MatchString(out) {
		t.Fatalf("collect of a free org: exit %d\n%s\n%s", code, out, errOut)
	}
}

// A failed command is logged once, in the configured format (it used to be text whatever
// NEONMETER_LOG_FORMAT said, and the collector logged the same failure again).
func TestMain_FailureLoggedOnceInConfiguredFormat(t *testing.T) {
	s, _ := simEnv(t, 40)
	t.Setenv("NEONMETER_NEON_ORG_ID", s.Orgs()[0].ID) // the free org: 403
	t.Setenv("NEONMETER_LOG_FORMAT", "json")
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	code, _, errOut := run(t, ctx, "collect", "--last", "2h")
	if code != exitFailure {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var failures int
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["level"] == "ERROR" {
			failures++
			if !strings.Contains(fmt.Sprint(rec["err"]), "no consumption history") {
				t.Errorf("failure line lacks the cause: %v", rec)
			}
		}
	}
	if failures != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", failures, errOut)
	}
}
