package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// simRequests is how many API requests the simulator has answered.
func simRequests(t *testing.T, reqs map[string]int64) int64 {
	t.Helper()
	var n int64
	for _, v := range reqs {
		n += v
	}
	return n
}

// Reversed --from/--to, --last 0 (which silently meant 48 h) and a bad org id must exit 2
// before any request reaches Neon.
func TestCollect_BadInvocationExitsBeforeWork(t *testing.T) {
	s, _ := simEnv(t, 20)
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	now := time.Now().UTC().Truncate(time.Hour)
	from, to := now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(-4*time.Hour).Format(time.RFC3339)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"collect", "--last", "0"}, "--last"},
		{[]string{"collect", "--last", "-2h"}, "--last"},
		{[]string{"collect", "--last", "2h", "--from", from}, "--last"},
		{[]string{"collect", "--from", from, "--to", to}, "--to"},
		{[]string{"collect", "--from", from, "--to", from}, "--to"},
		{[]string{"collect", "--frobnicate"}, "frobnicate"},
		{[]string{"backfill", "--from", from, "--to", to}, "--to"},
		{[]string{"status", "--window", "0s"}, "--window"},
	}
	for _, tc := range cases {
		code, _, errOut := run(t, ctx, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d mentioning %s; stderr %q", tc.args, code, exitUsage, tc.want, errOut)
		}
	}
	t.Setenv("NEONMETER_NEON_ORG_ID", "Not An Org")
	if code, _, errOut := run(t, ctx, "collect", "--last", "2h"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_ORG_ID") {
		t.Errorf("bad org id: exit %d, stderr %q", code, errOut)
	}
	if n := simRequests(t, s.Stats().Requests); n != 0 {
		t.Fatalf("refused invocations sent %d requests to Neon", n)
	}
}

// A key Neon refuses (401) is a configuration error: exit 2, naming the setting to fix.
func TestCollect_RefusedKeyIsConfigurationError(t *testing.T) {
	simEnv(t, 20)
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	wrong := writeTemp(t, "wrong-key", "napi-not-the-right-key\n")
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", wrong)
	t.Setenv("NEONMETER_NEON_MAX_RETRIES", "0")
	code, _, errOut := run(t, ctx, "collect", "--last", "2h")
	if code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_API_KEY") || !strings.Contains(errOut, "401") {
		t.Fatalf("refused key: exit %d, want %d naming NEONMETER_NEON_API_KEY; stderr %q", code, exitUsage, errOut)
	}
	if strings.Contains(errOut, "napi-not-the-right-key") {
		t.Fatalf("the key was printed: %q", errOut)
	}
}

// collect (and status, backfill) on an unmigrated database printed a window of 0001-01-01 and a
// missing-table error; they must say to run migrate, and touch neither Neon nor the database.
func TestCollect_UnmigratedSaysRunMigrate(t *testing.T) {
	s, _ := simEnv(t, 20)
	ctx := context.Background()
	from := time.Now().UTC().Add(-3 * time.Hour).Format(time.RFC3339)
	for _, args := range [][]string{{"collect"}, {"collect", "--last", "2h"}, {"status"}, {"backfill", "--from", from}} {
		code, out, errOut := run(t, ctx, args...)
		if code != exitUsage || !strings.Contains(errOut, "neonmeter migrate") || strings.Contains(out, "0001-01-01") {
			t.Errorf("%v on an unmigrated database: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if n := simRequests(t, s.Stats().Requests); n != 0 {
		t.Fatalf("%d requests reached Neon before the schema check", n)
	}
}
