package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// configEnv clears the environment and sets what `config` needs to pass, so each case below
// fails on its own setting only.
func configEnv(t *testing.T) {
	t.Helper()
	clearEnv(t)
	t.Setenv("NEONMETER_NEON_API_KEY", "napi-config-test-key")
	t.Setenv("NEONMETER_NEON_ORG_ID", "org-config-test")
}

// envconfig fell back to the bare tag name: NEON_API_URL sent the org's key elsewhere and
// ENFORCEMENT_MODE=enforce switched enforcement on.
func TestConfig_OnlyPrefixedVariablesAreRead(t *testing.T) {
	configEnv(t)
	t.Setenv("NEON_API_URL", "https://elsewhere.example/api/v2")
	t.Setenv("ENFORCEMENT_MODE", "enforce")
	t.Setenv("LOG_LEVEL", "debug")
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.NeonAPIURL != "https://console.neon.tech/api/v2" || c.EnforceMode != "dry-run" || c.LogLevel != "info" {
		t.Fatalf("bare variables were read: url %q, mode %q, log level %q", c.NeonAPIURL, c.EnforceMode, c.LogLevel)
	}
	t.Setenv("NEONMETER_ENFORCEMENT_MODE", "enforce")
	if c, err := LoadConfig(); err != nil || c.EnforceMode != "enforce" {
		t.Fatalf("the prefixed variable is not read: %q, %v", c.EnforceMode, err)
	}
}

// NaN, infinities, tiny rates (whose pacing interval overflows to "no wait"), an empty listen
// address, a bad org id and garbage schedules were accepted. Each must exit 2 naming its variable.
func TestConfig_RejectsNonsenseNamingTheVariable(t *testing.T) {
	cases := []struct{ env, value string }{
		{"NEONMETER_NEON_CONSUMPTION_RATE", "NaN"},
		{"NEONMETER_NEON_CONSUMPTION_RATE", "1e-12"},
		{"NEONMETER_NEON_GENERAL_RATE", "+Inf"},
		{"NEONMETER_NEON_GENERAL_RATE", "0"},
		{"NEONMETER_BILLING_RATE", "1e-12"},
		{"NEONMETER_BILLING_RATE", "NaN"},
		{"NEONMETER_BILLING_RATE", "-5"},
		{"NEONMETER_ENFORCEMENT_MAX_PERCENT", "NaN"},
		{"NEONMETER_ENFORCEMENT_MAX_PERCENT", "101"},
		{"NEONMETER_NEON_CONSUMPTION_BURST", "0"},
		{"NEONMETER_NEON_MAX_RETRIES", "-1"},
		{"NEONMETER_NEON_TIMEOUT", "1ns"},
		{"NEONMETER_BILLING_CONCURRENCY", "100000"},
		{"NEONMETER_RETENTION_MONTHS", "0"},
		{"NEONMETER_ENFORCEMENT_STALE_AFTER", "0s"},
		{"NEONMETER_LISTEN_ADDR", ""},
		{"NEONMETER_LISTEN_ADDR", "127.0.0.1:0"},
		{"NEONMETER_CLICKHOUSE_ADDR", "localhost"},
		{"NEONMETER_NEON_ORG_ID", "Org_With Spaces!"},
		{"NEONMETER_NEON_API_URL", "https://"},
		{"NEONMETER_COLLECT_SCHEDULE", "every hour please"},
		{"NEONMETER_COLLECT_SCHEDULE", "61 * * * *"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		configEnv(t)
		t.Setenv(tc.env, tc.value)
		code, _, errOut := run(t, ctx, "config")
		if code != exitUsage || !strings.Contains(errOut, tc.env) {
			t.Errorf("%s=%q: exit %d, want %d naming the variable; stderr %q", tc.env, tc.value, code, exitUsage, errOut)
		}
	}
	configEnv(t)
	mustRun(t, ctx, "config")
}

// config said all was well with settings that only serve rejected: a plan catalog that does
// not load, a Stripe key without a catalog.
func TestConfig_ChecksWhatServeChecks(t *testing.T) {
	ctx := context.Background()
	configEnv(t)
	broken := writeTemp(t, "plans.yaml", "plans: [{name: free, limits: {nonsense_metric: 1}}]\n")
	t.Setenv("NEONMETER_PLANS_FILE", broken)
	if code, _, errOut := run(t, ctx, "config"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_PLANS_FILE") {
		t.Errorf("broken catalog: exit %d, stderr %q", code, errOut)
	}
	configEnv(t)
	t.Setenv("NEONMETER_STRIPE_API_KEY", "sk_test_config_check")
	if code, _, errOut := run(t, ctx, "config"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_PLANS_FILE") {
		t.Errorf("Stripe key without a catalog: exit %d, stderr %q", code, errOut)
	}
	configEnv(t)
	os.Unsetenv("NEONMETER_NEON_ORG_ID")
	if code, _, errOut := run(t, ctx, "config"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_ORG_ID") {
		t.Errorf("no org: exit %d, stderr %q", code, errOut)
	}
	configEnv(t)
	t.Setenv("NEONMETER_PLANS_FILE", exampleCatalog)
	if code, out, errOut := run(t, ctx, "config"); code != exitOK || !strings.Contains(out, "plan catalog") {
		t.Errorf("good catalog: exit %d\n%s%s", code, out, errOut)
	}
}

// Key files: an empty one said "required" without naming the file, a world-readable one was
// accepted silently, and a byte-order mark stayed part of the key.
func TestConfig_KeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	configEnv(t)
	os.Unsetenv("NEONMETER_NEON_API_KEY")

	empty := write("empty-key", " \n", 0o600)
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", empty)
	if code, _, errOut := run(t, ctx, "config"); code != exitUsage || !strings.Contains(errOut, empty) || !strings.Contains(errOut, "empty") {
		t.Errorf("empty key file: exit %d, stderr %q", code, errOut)
	}

	open := write("open-key", "napi-world-readable\n", 0o644)
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", open)
	code, _, errOut := run(t, ctx, "config")
	if code != exitUsage || !strings.Contains(errOut, open) || !strings.Contains(errOut, "NEONMETER_ALLOW_INSECURE_KEY_FILES") {
		t.Errorf("world-readable key file: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("NEONMETER_ALLOW_INSECURE_KEY_FILES", "true")
	code, out, errOut := run(t, ctx, "config")
	if code != exitOK || !strings.Contains(out, "warning") || !strings.Contains(out, open) {
		t.Errorf("allowed world-readable key file: exit %d, want 0 with a warning\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "napi-world-readable") {
		t.Errorf("config printed the key")
	}

	bom := write("bom-key", "\uFEFFnapi-with-bom \t\r\n", 0o600)
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", bom)
	c, err := LoadConfig()
	if err != nil || c.NeonAPIKey.Reveal() != "napi-with-bom" {
		t.Errorf("BOM and trailing whitespace kept: %q, %v", c.NeonAPIKey.Reveal(), err)
	}
}

// migrate and status never call Neon: a Neon key file they cannot read must not stop them.
func TestMigrateAndStatus_NeedNoNeonKey(t *testing.T) {
	simEnv(t, 20)
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", filepath.Join(t.TempDir(), "not-mounted-here"))
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	code, out, errOut := run(t, ctx, "status")
	if code == exitUsage || strings.Contains(errOut, "NEON_API_KEY") || !strings.Contains(out, "watermark") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, ctx, "collect"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_API_KEY_FILE") {
		t.Fatalf("collect needs the key and must say which file failed: exit %d, %q", code, errOut)
	}
}

// Who besides the process may read a key file: others always count, a group only when the
// process is not in it (Kubernetes' fsGroup with mode 0440 is fine).
func TestKeyFileReaders(t *testing.T) {
	own := []int{1000, 2000}
	cases := []struct {
		perm os.FileMode
		gid  int
		want string
	}{
		{0o600, 5, ""},
		{0o400, 5, ""},
		{0o640, 2000, ""},
		{0o440, 1000, ""},
		{0o640, 5, "group 5"},
		{0o604, 1000, "others"},
		{0o644, 1000, "others"},
		{0o640, -1, "group -1"},
	}
	for _, tc := range cases {
		if got := keyFileReaders(tc.perm, tc.gid, own); got != tc.want {
			t.Errorf("mode %04o group %d: %q, want %q", tc.perm, tc.gid, got, tc.want)
		}
	}
}
