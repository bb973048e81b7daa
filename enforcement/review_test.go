package enforcement_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// mixedCatalog has plans that limit two metrics of different kinds, so a level reached on one
// limit must not leak into the judgement of another.
func mixedCatalog(t *testing.T) *plans.Catalog {
	t.Helper()
	y := `version: 1
warn_at: [80, 100]
plans:
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4}
    limits:
      compute_unit_seconds: {kind: soft, max: 1000 CU-second}
      active_time_seconds:  {kind: none, max: 1000s}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
  - name: capped
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 1}
    limits:
      compute_unit_seconds: {kind: hard, max: 1000 CU-second}
      active_time_seconds:  {kind: none, max: 1000s}
`
	cat, err := plans.Parse("mixed.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestEvaluate_HysteresisDoesNotCrossLimits: the remembered level is the worst of all limits,
// so hysteresis must not make a hard or soft limit that never reached 100 % count as over
// because another limit (here an alert-only one) is over: that would suspend or throttle a
// project that is inside its enforced limits.
func TestEvaluate_HysteresisDoesNotCrossLimits(t *testing.T) {
	cat := mixedCatalog(t)
	pol := enforcement.Policy{HysteresisPercent: 5}
	long := now.Add(-2 * time.Hour)
	normal := func(plan string) string {
		v := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, plan), PeriodStart: period, Fresh: true}, pol, now)
		return v.Target.Fingerprint()
	}
	enforced := func(plan string) string {
		v := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, plan), PeriodStart: period, Fresh: true,
			Usage: map[string]uint64{neon.MetricComputeUnitSeconds: 5000}}, pol, now)
		return v.Target.Fingerprint()
	}
	cases := []struct {
		name    string
		plan    string
		compute uint64
		active  uint64
		applied string
		status  enforcement.Status
		level   enforcement.Level
	}{
		{"soft at 97% while alert-only limit over: not throttled", "pro", 970, 5000, normal("pro"), enforcement.StatusNormal, enforcement.LevelOver},
		{"hard at 97% while alert-only limit over: not suspended", "capped", 970, 5000, normal("capped"), enforcement.StatusNormal, enforcement.LevelOver},
		{"hard at 97% once suspended on it: stays suspended", "capped", 970, 10, enforced("capped"), enforcement.StatusSuspended, enforcement.LevelOver},
		{"soft at 97% once throttled on it: stays throttled", "pro", 970, 10, enforced("pro"), enforcement.StatusThrottled, enforcement.LevelOver},
		{"soft at 100%: throttled", "pro", 1000, 5000, normal("pro"), enforcement.StatusThrottled, enforcement.LevelOver},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, c.plan), PeriodStart: period, Fresh: true,
				Usage: map[string]uint64{neon.MetricComputeUnitSeconds: c.compute, neon.MetricActiveTimeSeconds: c.active},
				Last:  enforcement.Memory{Known: true, PeriodStart: period, Plan: c.plan, Level: enforcement.LevelOver, OverSince: long, Seen: enforcement.Seen{Applied: c.applied}}}
			v := enforcement.Evaluate(d, pol, now)
			if v.Target.Status != c.status || v.Level != c.level {
				t.Fatalf("status %s level %s (findings %+v); want %s %s", v.Target.Status, v.Level, v.Findings, c.status, c.level)
			}
		})
	}
}

// TestEvaluate_GraceStartsAtTheEnforcedLimit: grace counts from when a hard or soft limit is
// first over, not from when an alert-only limit was: otherwise a project long over an alert-only
// limit is throttled or suspended the first cycle its enforced limit touches 100 %.
func TestEvaluate_GraceStartsAtTheEnforcedLimit(t *testing.T) {
	cat := mixedCatalog(t)
	pol := enforcement.Policy{HysteresisPercent: 5, Grace: 30 * time.Minute}
	long := now.Add(-48 * time.Hour)
	for _, plan := range []string{"pro", "capped"} {
		t.Run(plan, func(t *testing.T) {
			normal := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, plan), PeriodStart: period, Fresh: true}, pol, now).Target.Fingerprint()
			// Two days over the alert-only limit only.
			d := enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, plan), PeriodStart: period, Fresh: true,
				Usage: map[string]uint64{neon.MetricComputeUnitSeconds: 500, neon.MetricActiveTimeSeconds: 5000},
				Last:  enforcement.Memory{Known: true, PeriodStart: period, Plan: plan, Level: enforcement.LevelOver, OverSince: long, Seen: enforcement.Seen{Applied: normal}}}
			v := enforcement.Evaluate(d, pol, now)
			if v.Target.Status != enforcement.StatusNormal {
				t.Fatalf("alert-only over: status %s", v.Target.Status)
			}
			// The enforced limit now crosses 100 %: grace holds it.
			d.Last = v.Next
			d.Usage = map[string]uint64{neon.MetricComputeUnitSeconds: 1000, neon.MetricActiveTimeSeconds: 5000}
			v = enforcement.Evaluate(d, pol, now.Add(5*time.Minute))
			if v.Target.Status != enforcement.StatusNormal || v.Held != "grace" {
				t.Fatalf("enforced limit just crossed: status %s held %q, want normal held by grace", v.Target.Status, v.Held)
			}
			// After the grace it acts.
			d.Last = v.Next
			v = enforcement.Evaluate(d, pol, now.Add(40*time.Minute))
			if v.Target.Status == enforcement.StatusNormal || v.Held != "" {
				t.Fatalf("after grace: status %s held %q", v.Target.Status, v.Held)
			}
		})
	}
}

// freeOnlyYAML is a catalog of the free plan alone, its hard compute limit %d CU-seconds.
const freeOnlyYAML = `version: 1
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5}
    limits:
      compute_unit_seconds: {kind: hard, max: %d CU-second}
`

// TestNew_SoftLimitNeedsManagedAutoscaling: throttling lowers max CU to the plan's floor and a
// restore raises it back to the plan's max CU; a plan that does not manage autoscaling has no max
// CU to restore, so a throttled project would stay at 0.25 CU for good (defaults and computes).
func TestNew_SoftLimitNeedsManagedAutoscaling(t *testing.T) {
	y := fmt.Sprintf(freeOnlyYAML, 100) + `  - name: payg
    limits:
      compute_unit_seconds: {kind: soft, max: 100 CU-second}
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
`
	cat, err := plans.Parse("payg.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	// The defect itself: throttled, then a new period, and nothing brings max CU back.
	payg := planOf(t, cat, "payg")
	thr := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: payg, PeriodStart: period, Fresh: true,
		Usage: map[string]uint64{neon.MetricComputeUnitSeconds: 500}}, enforcement.Policy{}, now)
	if thr.Target.Status != enforcement.StatusThrottled || thr.Target.Defaults.AutoscalingLimitMaxCU != 0.25 || thr.Target.RestoreMaxCU != 0 {
		t.Fatalf("throttle target %+v", thr.Target)
	}
	next := thr.Next
	next.Applied = thr.Target.Fingerprint()
	v := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: payg, PeriodStart: period.AddDate(0, 1, 0), Fresh: true,
		Last: next}, enforcement.Policy{}, now.AddDate(0, 1, 0))
	obs := enforcement.Observed{Known: true, Defaults: thr.Target.Defaults,
		Endpoints: []neon.Endpoint{{ID: "ep-a", CurrentState: "active", AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: 0.25}}}
	if acts, _ := enforcement.PlanVerdict(v, obs, enforcement.Policy{}); len(acts) != 0 {
		t.Fatalf("unexpected restore actions %v (the check below would be moot)", acts)
	}
	// So such a catalog is refused up front.
	_, err = enforcement.New(enforcement.Config{Neon: (*neon.Client)(nil), Store: fakeStore{}, Accounts: fakeAccounts{}, Catalog: cat, DefaultPlan: "free"})
	if err == nil || !strings.Contains(err.Error(), "payg") {
		t.Fatalf("New accepted a soft limit on a plan without autoscaling settings: %v", err)
	}
}

// TestLoad_UnknownPlanIsNotTheDefaultPlan: a project assigned to a plan the catalog does not know
// (a catalog edit dropped a customer's own plan) must be left alone ("unknown plan"), not judged
// by the default plan: with a free default that suspends a paying customer.
func TestLoad_UnknownPlanIsNotTheDefaultPlan(t *testing.T) {
	f := newFixture(t, 20)
	f.collect(t)
	usage := f.usage(t)
	var victim string
	for id, u := range usage {
		if u > 10 && (victim == "" || id < victim) {
			victim = id
		}
	}
	if victim == "" {
		t.Fatal("no project with usage")
	}
	// The account was imported while the catalog had "bigscale"; the catalog in force lacks it.
	full := catalog(t, 1, 1, 1, usage[victim]*10)
	f.assign(t, full, plans.PeriodStart(testNow).Add(-24*time.Hour), map[string]string{victim: "bigscale"})
	cut, err := plans.Parse("cut.yaml", []byte(fmt.Sprintf(freeOnlyYAML, 1)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := enforcement.New(f.config(enforcement.Config{Neon: f.Client, Catalog: cut, DefaultPlan: "free", Policy: testPolicy()}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Cycle(context.Background(), enforcement.CycleOptions{Only: []string{victim}})
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := f.Sim.Project(victim); ps.QuotaSuspended {
		t.Fatalf("project on an unknown plan was suspended: %v", actionList(rep))
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Held != "unknown plan" || rep.Rows[0].Plan != "" || len(rep.Rows[0].Actions) != 0 {
		t.Fatalf("rows %+v, want one row held as unknown plan without actions", rep.Rows)
	}
}

// fakeStore and fakeAccounts only satisfy New's non-nil checks; the test fails before any query.
type (
	fakeStore    struct{ enforcement.Store }
	fakeAccounts struct{ accounts.Store }
)
