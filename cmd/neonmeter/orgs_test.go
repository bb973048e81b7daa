package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// Several orgs, each with its consumption route, grouped into accounts by the key that reads
// them: the default key's orgs first, then one account per key file.
func TestConfig_OrgsAndAccounts(t *testing.T) {
	configEnv(t)
	os.Unsetenv("NEONMETER_NEON_ORG_ID")
	keyB := filepath.Join(t.TempDir(), "neon-b")
	if err := os.WriteFile(keyB, []byte("napi-account-b-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NEONMETER_NEON_ORG_IDS", "org-a, org-b:legacy,org-c:v2")
	t.Setenv("NEONMETER_NEON_ORG_KEY_FILES", "org-b="+keyB+",org-c="+keyB)
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	accts := c.neonAccounts()
	if len(accts) != 2 {
		t.Fatalf("accounts = %+v, want the default one and the key file's", accts)
	}
	if a := accts[0]; a.Name != "default" || len(a.Orgs) != 1 || a.Orgs[0] != (neonOrg{ID: "org-a", Endpoint: collector.EndpointV2}) {
		t.Errorf("default account = %+v", a)
	}
	b := accts[1]
	if b.Key.Reveal() != "napi-account-b-secret" || len(b.Orgs) != 2 ||
		b.Orgs[0] != (neonOrg{ID: "org-b", Endpoint: collector.EndpointLegacy}) || b.Orgs[1] != (neonOrg{ID: "org-c", Endpoint: collector.EndpointV2}) {
		t.Errorf("key file account = %+v", b)
	}
	if got := c.redactor().String("error: napi-account-b-secret echoed"); strings.Contains(got, "napi-account-b-secret") {
		t.Errorf("the second account's key is not redacted: %q", got)
	}
	code, out, errOut := run(t, context.Background(), "config")
	if code != exitOK || strings.Contains(out+errOut, "napi-account-b-secret") || !strings.Contains(out, "org-b:legacy") {
		t.Errorf("config: exit %d, printed the key or not the orgs\n%s%s", code, out, errOut)
	}
}

// The single-org setting keeps working, and mistakes name their variable.
func TestConfig_OrgSettingsRefusedNamingTheVariable(t *testing.T) {
	configEnv(t)
	c, err := LoadConfig()
	if err != nil || len(c.orgs()) != 1 || c.orgs()[0].ID != "org-config-test" || len(c.neonAccounts()) != 1 {
		t.Fatalf("NEONMETER_NEON_ORG_ID alone: orgs %+v, err %v", c.orgs(), err)
	}
	cases := []struct{ env, value, want string }{
		{"NEONMETER_NEON_ORG_IDS", "org-a", "not both"},
		{"NEONMETER_NEON_ORG_IDS", "Org A", "NEONMETER_NEON_ORG_IDS"},
		{"NEONMETER_NEON_ORG_IDS", "org-a:v3", "consumption route"},
		{"NEONMETER_NEON_ORG_IDS", "org-a,org-a", "twice"},
		{"NEONMETER_NEON_ORG_KEY_FILES", "org-zzz=/nonexistent", "not in NEONMETER_NEON_ORG_IDS"},
		{"NEONMETER_NEON_ORG_KEY_FILES", "org-config-test", "org-id=file"},
		{"NEONMETER_SIM_CLOCK", "start=yesterday", "NEONMETER_SIM_CLOCK"},
	}
	for _, tc := range cases {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			configEnv(t)
			if tc.env == "NEONMETER_NEON_ORG_IDS" && tc.want != "not both" {
				os.Unsetenv("NEONMETER_NEON_ORG_ID")
			}
			t.Setenv(tc.env, tc.value)
			_, err := LoadConfig()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// A key file for another account that cannot be read is refused naming the variable and file.
func TestConfig_OrgKeyFileUnreadable(t *testing.T) {
	configEnv(t)
	os.Unsetenv("NEONMETER_NEON_ORG_ID")
	missing := filepath.Join(t.TempDir(), "absent")
	t.Setenv("NEONMETER_NEON_ORG_IDS", "org-a,org-b")
	t.Setenv("NEONMETER_NEON_ORG_KEY_FILES", "org-b="+missing)
	_, err := LoadConfig()
	if err == nil || !strings.Contains(err.Error(), "NEONMETER_NEON_ORG_KEY_FILES") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v", err)
	}
}

// collect without window flags runs one budgeted cycle per Neon account: three orgs, one of
// them on the legacy route and read with a second account's key file, each collected within
// its account's budget, with progress recorded for every listed project.
func TestCollect_BudgetedCycleAcrossAccounts(t *testing.T) {
	s, db := simEnv(t, 200)
	ctx := context.Background()
	orgs := s.Orgs() // free, launch, scale, legacy
	second := filepath.Join(t.TempDir(), "neon-second-account")
	if err := os.WriteFile(second, []byte("cmd-test-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("NEONMETER_NEON_ORG_ID")
	t.Setenv("NEONMETER_NEON_ORG_IDS", orgs[1].ID+","+orgs[2].ID+","+orgs[3].ID+":legacy")
	t.Setenv("NEONMETER_NEON_ORG_KEY_FILES", orgs[3].ID+"="+second)
	t.Setenv("NEONMETER_NEON_CONSUMPTION_RATE", "600")
	t.Setenv("NEONMETER_COLLECT_SCHEDULE", "*/2 * * * *")
	t.Setenv("NEONMETER_COLLECT_DEADLINE", "1m")
	mustRun(t, ctx, "migrate")
	code, out, errOut := run(t, ctx, "collect")
	if code != exitOK {
		t.Fatalf("collect: exit %d\n%s%s", code, out, errOut)
	}
	if n := strings.Count(out, "of a budget of 600"); n != 2 {
		t.Errorf("want two accounts' cycles with a budget of 600 calls (rate × 1m deadline), found %d:\n%s", n, out)
	}
	if got := s.Stats().ConsumptionRequests; got == 0 || got > 2*600 {
		t.Errorf("consumption requests = %d, want some and at most both budgets", got)
	}
	conn := chtest.Connect(t)
	want := uint64(len(orgs[1].ProjectIDs) + len(orgs[2].ProjectIDs) + len(orgs[3].ProjectIDs))
	if n := chtest.Count(t, conn, "SELECT count() FROM (SELECT DISTINCT org_id, project_id FROM "+db+".collection_progress)"); n != want {
		t.Errorf("progress rows for %d projects, want %d (every listed project of the three orgs)", n, want)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM (SELECT DISTINCT org_id FROM "+db+".usage_facts)"); n != 3 {
		t.Errorf("usage of %d orgs, want 3", n)
	}
	code, out, _ = run(t, ctx, "status")
	for _, o := range orgs[1:] {
		if !strings.Contains(out, o.ID) {
			t.Errorf("status does not show org %s", o.ID)
		}
	}
	if !strings.Contains(out, "freshness by tier") || !strings.Contains(out, "rolling") {
		t.Errorf("status shows no tier freshness (exit %d):\n%s", code, out)
	}
}
