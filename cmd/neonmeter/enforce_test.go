package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// simMutations counts the simulator's mutating requests so far.
func simMutations(s *sim.Sim) int64 {
	var n int64
	for k, v := range s.Stats().Requests {
		if strings.HasPrefix(k, "PATCH ") || strings.HasPrefix(k, "POST ") {
			n += v
		}
	}
	return n
}

// planTable is the table part of enforce's output (the summary line after it differs between a
// dry run and a real one).
func planTable(out string) string {
	table, _, _ := strings.Cut(out, "\n\n")
	return table
}

func TestEnforce_HelpAndBadUsage(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	for _, args := range [][]string{{"enforce", "-h"}, {"enforce", "explain", "-h"}, {"enforce", "release", "--help"}} {
		if code, _, errOut := run(t, ctx, args...); code != exitOK || !strings.Contains(errOut, "neonmeter enforce explain PROJECT") || !strings.Contains(errOut, "Exit codes") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, _, errOut := run(t, ctx, "enforce", "--bogus"); code != exitUsage || !strings.Contains(errOut, "bogus") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, ctx, "enforce", "explain"); code != exitUsage || !strings.Contains(errOut, "exactly one project id") {
		t.Errorf("explain without a project: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, ctx, "enforce", "release", "a", "b"); code != exitUsage || !strings.Contains(errOut, "exactly one project id") {
		t.Errorf("release of two projects: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("NEONMETER_ENFORCEMENT_MODE", "banana")
	if code, _, errOut := run(t, ctx, "enforce"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_ENFORCEMENT_MODE") {
		t.Errorf("bad mode: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, ctx, "enforce", "--dry-run"); code != exitUsage || !strings.Contains(errOut, "NEONMETER_ENFORCEMENT_MODE") {
		t.Errorf("bad mode with --dry-run: exit %d, stderr %q", code, errOut)
	}
}

// TestEnforce_DryRunEnforceExplainRelease collects from the simulator, imports accounts and a
// tiny plan catalog so that a free project crosses its hard limit, a pro project its soft limit
// and an enterprise project its alert-only limit, then runs the enforce commands.
func TestEnforce_DryRunEnforceExplainRelease(t *testing.T) {
	s, db := simEnv(t, 200)
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	mustRun(t, ctx, "collect", "--last", "72h")

	// Period-to-date compute per project, as enforcement sees it.
	conn := chtest.Connect(t)
	now := time.Now().UTC()
	usage := map[string]uint64{}
	err := enforcementstore.New(conn, db).UsageSince(ctx, plans.PeriodStart(now), now.Add(time.Hour), func(u enforcement.PeriodUsage) {
		if u.Metric == neon.MetricComputeUnitSeconds {
			usage[u.ProjectID] = u.Sum
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return usage[ids[i]] < usage[ids[j]] || usage[ids[i]] == usage[ids[j]] && ids[i] < ids[j]
	})
	n := len(ids)
	if n < 4 || usage[ids[n-3]] == 0 || usage[ids[0]]*10 >= usage[ids[n-3]]*8 {
		t.Fatalf("the collected period has too little spread to cross limits: %d projects with usage", n)
	}
	// One limit for all three plans, at the third-largest usage: the three largest are over.
	limit := usage[ids[n-3]]
	freeOver, proOver, entOver, freeOK := ids[n-1], ids[n-2], ids[n-3], ids[0]

	catPath := writeTemp(t, "plans.yaml", fmt.Sprintf(`version: 1
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5, suspend_timeout: 5m}
    limits:
      compute_unit_seconds: {kind: hard, max: %[1]d CU-second}
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4}
    limits:
      compute_unit_seconds: {kind: soft, max: %[1]d CU-second}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
  - name: enterprise
    limits:
      compute_unit_seconds: {kind: none, max: %[1]d CU-second}
`, limit))
	csvPath := writeTemp(t, "accounts.csv", "project_id,customer_id,plan,valid_from\n"+
		freeOver+",cus_free1,free,2020-01-01\n"+proOver+",cus_pro1,pro,2020-01-01\n"+
		entOver+",cus_ent1,enterprise,2020-01-01\n"+freeOK+",cus_free2,free,2020-01-01\n")
	t.Setenv("NEONMETER_PLANS_FILE", catPath)
	t.Setenv("NEONMETER_DEFAULT_PLAN", "enterprise") // the rest of the fleet: alert only
	t.Setenv("NEONMETER_ENFORCEMENT_GRACE", "0s")
	t.Setenv("NEONMETER_ENFORCEMENT_MAX_PERCENT", "100")
	mustRun(t, ctx, "accounts", "import", csvPath)

	// The default mode is dry-run: it plans, prints and changes nothing.
	before := simMutations(s)
	code, defOut, errOut := run(t, ctx, "enforce")
	if code != exitOK || !strings.Contains(defOut, "enforce (dry-run)") || simMutations(s) != before {
		t.Fatalf("enforce in the default mode: exit %d, %d mutations\n%s\n%s", code, simMutations(s)-before, defOut, errOut)
	}
	t.Setenv("NEONMETER_ENFORCEMENT_MODE", "enforce")
	code, dryOut, errOut := run(t, ctx, "enforce", "--dry-run")
	if code != exitOK {
		t.Fatalf("enforce --dry-run: exit %d\n%s\n%s", code, dryOut, errOut)
	}
	if got := simMutations(s) - before; got != 0 {
		t.Fatalf("enforce --dry-run made %d Neon mutations, want 0\n%s", got, dryOut)
	}
	for _, want := range []string{
		`(?m)^PROJECT\s+PLAN\s+LEVEL\s+STATUS\s+METRIC\s+USAGE\s+LIMIT\s+ACTION\s+REASON\s+CHANGE\s+HELD$`,
		`(?m)^` + freeOver + `\s+free\s+over\s+suspended\s+compute_unit_seconds\s+\d+\s+` + fmt.Sprint(limit) + `\s+update_project\s+suspend\s+quota=`,
		`(?m)^` + proOver + `\s+pro\s+over\s+throttled\s+compute_unit_seconds\s+\d+\s+` + fmt.Sprint(limit) + `\s+update_project\s+throttle\s+.*defaults=0\.25-0\.25`,
		`(?m)^` + entOver + `\s+enterprise\s+over\s+normal\s+compute_unit_seconds\s+\d+\s+` + fmt.Sprint(limit) + `\s+-\s+-\s+-\s+-$`,
		`(?m)^` + freeOK + `\s+free\s+ok\s+normal\s+\S+\s+\d+\s+\d+\s+update_project\s+tighten\s+`,
		`enforce \(dry-run\): \d+ projects, \d+ read from Neon, [1-9]\d* action\(s\) planned, 0 mutation\(s\) made, 0 failure\(s\)`,
	} {
		if !regexp.MustCompile(want).MatchString(dryOut) {
			t.Errorf("enforce --dry-run output lacks %s:\n%s", want, dryOut)
		}
	}
	if planTable(defOut) != planTable(dryOut) {
		t.Errorf("the default mode and --dry-run planned differently:\n%s\n---\n%s", defOut, dryOut)
	}

	// Enforce applies exactly what the dry run planned.
	code, enfOut, errOut := run(t, ctx, "enforce")
	if code != exitOK {
		t.Fatalf("enforce: exit %d\n%s\n%s", code, enfOut, errOut)
	}
	made := simMutations(s) - before
	if made == 0 || !strings.Contains(enfOut, fmt.Sprintf("%d mutation(s) made, 0 failure(s)", made)) || !strings.Contains(enfOut, "enforce (enforce)") {
		t.Fatalf("enforce: the simulator saw %d mutations\n%s", made, enfOut)
	}
	if planTable(enfOut) != planTable(dryOut) {
		t.Errorf("enforce did not do what --dry-run planned:\n%s\n---\n%s", dryOut, enfOut)
	}
	fp, _ := s.Project(freeOver)
	if !fp.QuotaSuspended || s.TryWake(freeOver) {
		t.Errorf("%s is not held by its quota after enforce (quota %+v)", freeOver, fp.Quota)
	}
	pp, _ := s.Project(proOver)
	if pp.QuotaSuspended || pp.DefaultEndpointSettings.MaxCU != 0.25 {
		t.Errorf("%s: suspended %v, default max CU %v, want throttled to 0.25", proOver, pp.QuotaSuspended, pp.DefaultEndpointSettings.MaxCU)
	}
	for _, ep := range pp.Endpoints {
		if ep.Active && ep.MaxCU > 0.25 {
			t.Errorf("%s: running endpoint %s still at max %v CU", proOver, ep.ID, ep.MaxCU)
		}
	}
	ep, _ := s.Project(entOver)
	ok, _ := s.Project(freeOK)
	if ep.QuotaSuspended || ep.Quota != (sim.Quota{}) || ok.QuotaSuspended || ok.DefaultEndpointSettings.MaxCU != 0.5 {
		t.Errorf("enterprise %s quota %+v suspended %v; free-within-limits %s suspended %v max CU %v",
			entOver, ep.Quota, ep.QuotaSuspended, freeOK, ok.QuotaSuspended, ok.DefaultEndpointSettings.MaxCU)
	}

	// A second enforce applies nothing.
	before = simMutations(s)
	code, again, _ := run(t, ctx, "enforce")
	if code != exitOK || simMutations(s) != before || !strings.Contains(again, " 0 action(s) planned, 0 mutation(s) made") {
		t.Fatalf("second enforce: exit %d, %d mutations\n%s", code, simMutations(s)-before, again)
	}

	// Explain names the limit and the usage.
	code, expl, errOut := run(t, ctx, "enforce", "explain", freeOver)
	if code != exitOK {
		t.Fatalf("explain: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		`project ` + freeOver + ` \(org [^)]+\), plan free`,
		`level over, status suspended`,
		fmt.Sprintf(`(?m)^compute_unit_seconds\s+hard\s+%d\s+%d\s+\d+\.\d\s+over$`, usage[freeOver], limit),
		`next cycle: nothing to do`,
		`audit \(newest first\):\n`,
		`(?m)^  \S+ enforce update_project suspend applied level=over usage=` + fmt.Sprint(usage[freeOver]) + ` limit=` + fmt.Sprint(limit) + ` .*ops=\[[0-9a-f-]{36}\]`,
	} {
		if !regexp.MustCompile(want).MatchString(expl) {
			t.Errorf("explain lacks %s:\n%s", want, expl)
		}
	}
	// The crossing is audited once over the four cycles: the first (default dry-run) cycle saw it
	// and remembered the level, so the later ones do not repeat it.
	if got := strings.Count(expl, " decision suspended recorded level=over"); got != 1 {
		t.Errorf("explain shows %d decisions for %s, want 1:\n%s", got, freeOver, expl)
	}
	if simMutations(s) != before {
		t.Fatalf("explain mutated Neon")
	}
	if code, out, errOut := run(t, ctx, "enforce", "explain", "no-such-project-123"); code != exitOK || !strings.Contains(out, "neon: could not read") {
		t.Errorf("explain of an unknown project: exit %d\n%s\n%s", code, out, errOut)
	}

	// Release restores the suspended project for the rest of the period.
	code, rel, errOut := run(t, ctx, "enforce", "release", freeOver)
	if code != exitOK || !strings.Contains(rel, "released "+freeOver+" until the period ends (mode enforce)") ||
		!regexp.MustCompile(`(?m)^`+freeOver+`\s+free\s+over\s+released\s+.*update_project\s+release\s+`).MatchString(rel) {
		t.Fatalf("release: exit %d\n%s\n%s", code, rel, errOut)
	}
	fp, _ = s.Project(freeOver)
	if fp.QuotaSuspended || fp.Quota != (sim.Quota{}) {
		t.Errorf("%s after release: suspended %v quota %+v, want no quota", freeOver, fp.QuotaSuspended, fp.Quota)
	}
	if !s.TryWake(freeOver) {
		t.Errorf("%s does not run again after release", freeOver)
	}
	if code, expl, _ := run(t, ctx, "enforce", "explain", freeOver); code != exitOK || !strings.Contains(expl, "status released") {
		t.Errorf("explain after release: exit %d\n%s", code, expl)
	}
	if code, _, errOut := run(t, ctx, "enforce", "release", "../etc"); code != exitFailure && code != exitUsage || !strings.Contains(errOut, "does not look like a Neon project id") {
		t.Errorf("release of a bad id: exit %d, stderr %q", code, errOut)
	}
	before = simMutations(s)
	if code, out, _ := run(t, ctx, "enforce"); code != exitOK || simMutations(s) != before || !strings.Contains(out, " 0 mutation(s) made") {
		t.Fatalf("enforce after release: exit %d, %d mutations (a released project must stay released)\n%s", code, simMutations(s)-before, out)
	}
}

// TestEnforce_BreakerHoldsUntilAckBreaker: a tripped breaker used to let its cap through every
// cycle. From the CLI: the cycle that trips acts on the cap, the next holds everything, `enforce
// ack-breaker` lets the next cap through (and says when there is nothing to acknowledge).
func TestEnforce_BreakerHoldsUntilAckBreaker(t *testing.T) {
	s, _ := simEnv(t, 200)
	ctx := context.Background()
	mustRun(t, ctx, "migrate")
	mustRun(t, ctx, "collect", "--last", "72h")
	catPath := writeTemp(t, "plans.yaml", `version: 1
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 16}
    limits:
      compute_unit_seconds: {kind: hard, max: 1 CU-second}
`)
	for k, v := range map[string]string{"NEONMETER_PLANS_FILE": catPath, "NEONMETER_DEFAULT_PLAN": "free", "NEONMETER_ENFORCEMENT_GRACE": "0s",
		"NEONMETER_ENFORCEMENT_MAX_ACTIONS": "1", "NEONMETER_ENFORCEMENT_MAX_PERCENT": "100", "NEONMETER_ENFORCEMENT_MODE": "enforce"} {
		t.Setenv(k, v)
	}
	suspended := func() int {
		n := 0
		for _, o := range s.Orgs() {
			for _, id := range o.ProjectIDs {
				if ps, _ := s.Project(id); ps.QuotaSuspended {
					n++
				}
			}
		}
		return n
	}
	enforce := func(want string, wantSuspended int) {
		t.Helper()
		code, out, errOut := run(t, ctx, "enforce")
		if code != exitOK || !strings.Contains(out, want) || suspended() != wantSuspended {
			t.Fatalf("enforce: exit %d, %d suspended (want %d), output lacks %q:\n%s\n%s", code, suspended(), wantSuspended, want, out, errOut)
		}
	}
	enforce("at most 1 acted on", 1)
	enforce("none is until `neonmeter enforce ack-breaker`", 1)
	if code, out, errOut := run(t, ctx, "enforce", "ack-breaker"); code != exitOK || !strings.Contains(out, "acknowledged the circuit breaker") {
		t.Fatalf("ack-breaker: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, ctx, "enforce", "ack-breaker"); code != exitOK || !strings.Contains(out, "not tripped") {
		t.Fatalf("second ack-breaker: exit %d\n%s", code, out)
	}
	enforce("at most 1 acted on", 2)
	if code, _, errOut := run(t, ctx, "enforce", "ack-breaker", "extra"); code != exitUsage || !strings.Contains(errOut, "no arguments") {
		t.Fatalf("ack-breaker with an argument: exit %d, %s", code, errOut)
	}
}
