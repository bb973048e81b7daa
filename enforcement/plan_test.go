package enforcement_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// tablePlans: free (hard, 1000 CU-s), pro (soft, 1000), enterprise (none, 1000), bigscale (hard 10000).
func tablePlans(t *testing.T) *plans.Catalog { return catalog(t, 1000, 1000, 1000, 10000) }

func planOf(t *testing.T, cat *plans.Catalog, name string) *plans.Plan {
	p, ok := cat.Plan(name)
	if !ok {
		t.Fatalf("no plan %s", name)
	}
	return p
}

// applied is the fingerprint a project carries after enforcement applied status on plan.
func applied(t *testing.T, cat *plans.Catalog, plan string, s enforcement.Status) string {
	v := enforcement.Evaluate(enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, plan), PeriodStart: period, Fresh: true,
		Usage: map[string]uint64{neon.MetricComputeUnitSeconds: map[enforcement.Status]uint64{enforcement.StatusNormal: 0,
			enforcement.StatusSuspended: 1 << 40, enforcement.StatusThrottled: 1 << 40}[s]}}, enforcement.Policy{}, now)
	if v.Target.Status != s {
		t.Fatalf("helper: %s on %s evaluates to %s", s, plan, v.Target.Status)
	}
	return v.Target.Fingerprint()
}

func TestEvaluate_Transitions(t *testing.T) {
	cat := tablePlans(t)
	pol := enforcement.Policy{HysteresisPercent: 5, Grace: 30 * time.Minute, NeverSuspend: map[string]bool{"vip-1": true}}
	mem := func(plan string, l enforcement.Level, s enforcement.Status, overSince time.Time) enforcement.Memory {
		return enforcement.Memory{Known: true, PeriodStart: period, Plan: plan, Level: l, OverSince: overSince, Seen: enforcement.Seen{Applied: applied(t, cat, plan, s)}}
	}
	lastMonth := func(m enforcement.Memory) enforcement.Memory { m.PeriodStart = period.AddDate(0, -1, 0); return m }
	released := func(m enforcement.Memory) enforcement.Memory { m.Released = true; return m }
	long := now.Add(-2 * time.Hour)
	cases := []struct {
		name     string
		project  string
		plan     string
		usage    uint64
		fresh    bool
		last     enforcement.Memory
		level    enforcement.Level
		status   enforcement.Status
		held     enforcement.HoldReason
		crossed  bool
		enforces bool
	}{
		{"first sight ok", "p-1", "free", 100, true, enforcement.Memory{}, "ok", "normal", "", false, false},
		{"ok to warning at 80%", "p-1", "free", 800, true, mem("free", "ok", "normal", time.Time{}), "warning", "normal", "", true, false},
		{"warning stays", "p-1", "free", 900, true, mem("free", "warning", "normal", time.Time{}), "warning", "normal", "", false, false},
		{"hard over after grace suspends", "p-1", "free", 1000, true, mem("free", "over", "normal", long), "over", "suspended", "", false, true},
		{"hard over within grace is held", "p-1", "free", 1200, true, mem("free", "warning", "normal", time.Time{}), "over", "normal", "grace", true, false},
		{"hard over, already suspended", "p-1", "free", 1500, true, mem("free", "over", "suspended", long), "over", "suspended", "", false, false},
		{"soft over throttles", "p-1", "pro", 1000, true, mem("pro", "over", "normal", long), "over", "throttled", "", false, true},
		{"none over only alerts", "p-1", "enterprise", 5000, true, mem("enterprise", "warning", "normal", time.Time{}), "over", "normal", "", true, false},
		{"stale data: no suspension", "p-1", "free", 5000, false, mem("free", "over", "normal", long), "over", "normal", "stale data", false, false},
		{"stale data: no restore on usage", "p-1", "free", 10, false, mem("free", "over", "suspended", long), "ok", "suspended", "stale data", true, false},
		{"never-suspend list", "vip-1", "free", 5000, true, mem("free", "over", "normal", long), "over", "normal", "never-suspend list", false, false},
		{"hysteresis keeps over at 96%", "p-1", "free", 960, true, mem("free", "over", "suspended", long), "over", "suspended", "", false, false},
		{"hysteresis leaves over below 95%", "p-1", "free", 940, true, mem("free", "over", "suspended", long), "warning", "normal", "", true, false},
		{"hysteresis keeps warning at 76%", "p-1", "free", 760, true, mem("free", "warning", "normal", time.Time{}), "warning", "normal", "", false, false},
		{"hysteresis leaves warning below 75%", "p-1", "free", 740, true, mem("free", "warning", "normal", time.Time{}), "ok", "normal", "", true, false},
		{"new period restores", "p-1", "free", 10, true, lastMonth(mem("free", "over", "suspended", long)), "ok", "normal", "", true, false},
		{"new period restores even on stale data", "p-1", "free", 0, false, lastMonth(mem("free", "over", "suspended", long)), "ok", "normal", "", true, false},
		{"upgrade restores", "p-1", "bigscale", 5000, true, mem("free", "over", "suspended", long), "ok", "normal", "", true, false},
		{"raised limit restores", "p-1", "bigscale", 5000, true, mem("bigscale", "over", "suspended", long), "ok", "normal", "", true, false},
		{"release", "p-1", "free", 5000, true, released(mem("free", "over", "suspended", long)), "over", "released", "", false, false},
		{"release ends with the period", "p-1", "free", 5000, true, lastMonth(released(mem("free", "over", "suspended", long))), "over", "normal", "grace", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := enforcement.Desired{ProjectID: c.project, Plan: planOf(t, cat, c.plan), PeriodStart: period, Fresh: c.fresh,
				Usage: map[string]uint64{neon.MetricComputeUnitSeconds: c.usage}, Last: c.last}
			v := enforcement.Evaluate(d, pol, now)
			if v.Level != c.level || v.Target.Status != c.status || v.Held != c.held || v.Crossed != c.crossed || v.Enforces != c.enforces {
				t.Fatalf("got level %s status %s held %q crossed %v enforces %v; want %s %s %q %v %v",
					v.Level, v.Target.Status, v.Held, v.Crossed, v.Enforces, c.level, c.status, c.held, c.crossed, c.enforces)
			}
		})
	}
}

func TestPlan_Actions(t *testing.T) {
	cat := tablePlans(t)
	pol := enforcement.Policy{}
	free := planOf(t, cat, "free")
	tight := neon.Quota{ActiveTimeSeconds: 3600000}
	freeDefaults := neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: 0.5, SuspendTimeoutSeconds: 300}
	proDefaults := neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: 4}
	ep := func(id, state string, maxCU float64) neon.Endpoint {
		return neon.Endpoint{ID: id, CurrentState: state, AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: maxCU}
	}
	suspendedQ := tight
	suspendedQ.ActiveTimeSeconds = 1
	cases := []struct {
		name  string
		plan  string
		usage uint64
		last  enforcement.Memory
		obs   enforcement.Observed
		pol   enforcement.Policy
		want  []string // "kind reason endpoint"
		pend  bool
	}{
		{"tighten from nothing", "free", 0, enforcement.Memory{},
			enforcement.Observed{Known: true, Endpoints: []neon.Endpoint{ep("ep-a", "idle", 2)}}, pol,
			[]string{"update_project tighten"}, false},
		{"in line: nothing", "free", 10, enforcement.Memory{},
			enforcement.Observed{Known: true, Quota: tight, Defaults: freeDefaults, Endpoints: []neon.Endpoint{ep("ep-a", "active", 0.5)}}, pol,
			nil, false},
		{"running compute above the plan's max: capped; idle one left", "free", 10, enforcement.Memory{},
			enforcement.Observed{Known: true, Quota: tight, Defaults: freeDefaults, Endpoints: []neon.Endpoint{ep("ep-a", "active", 2), ep("ep-b", "idle", 2)}}, pol,
			[]string{"update_endpoint cap ep-a"}, false},
		{"hand-made drift corrected", "free", 10, enforcement.Memory{Known: true, PeriodStart: period, Plan: "free", Level: "ok", Seen: enforcement.Seen{Applied: applied(t, cat, "free", "normal")}},
			enforcement.Observed{Known: true, Quota: neon.Quota{}, Defaults: freeDefaults}, pol,
			[]string{"update_project drift"}, false},
		{"logical size quota kept", "free", 10, enforcement.Memory{},
			enforcement.Observed{Known: true, Quota: neon.Quota{ActiveTimeSeconds: 3600000, LogicalSizeBytes: 5}, Defaults: freeDefaults}, pol,
			nil, false},
		{"suspend: quota and running computes only", "free", 2000, enforcement.Memory{},
			enforcement.Observed{Known: true, Quota: tight, Defaults: freeDefaults, Endpoints: []neon.Endpoint{ep("ep-a", "active", 0.5), ep("ep-b", "idle", 0.5)}}, pol,
			[]string{"update_project suspend", "suspend_endpoint suspend ep-a"}, false},
		{"suspended and held: nothing", "free", 2000, enforcement.Memory{},
			enforcement.Observed{Known: true, Quota: suspendedQ, Defaults: freeDefaults, Endpoints: []neon.Endpoint{ep("ep-a", "idle", 0.5)}}, pol,
			nil, false},
		{"throttle running computes, defer idle ones", "pro", 2000, enforcement.Memory{},
			enforcement.Observed{Known: true, Defaults: proDefaults, Endpoints: []neon.Endpoint{ep("ep-a", "active", 4), ep("ep-b", "idle", 4)}}, pol,
			[]string{"update_project throttle", "update_endpoint throttle ep-a"}, true},
		{"throttle idle computes when allowed (wake risk)", "pro", 2000, enforcement.Memory{},
			enforcement.Observed{Known: true, Defaults: neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: 0.25}, Endpoints: []neon.Endpoint{ep("ep-b", "idle", 4)}},
			enforcement.Policy{ThrottleIdle: true}, []string{"update_endpoint throttle ep-b wake"}, false},
		{"restore after throttle: running computes raised", "pro", 10, enforcement.Memory{Known: true, PeriodStart: period, Plan: "pro", Level: "over", Seen: enforcement.Seen{Applied: applied(t, cat, "pro", "throttled")}},
			enforcement.Observed{Known: true, Defaults: neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.25, AutoscalingLimitMaxCU: 0.25}, Endpoints: []neon.Endpoint{ep("ep-a", "active", 0.25), ep("ep-b", "idle", 0.25)}}, pol,
			[]string{"update_project restore", "update_endpoint restore ep-a"}, true},
		{"restore after suspend", "free", 10, enforcement.Memory{Known: true, PeriodStart: period.AddDate(0, -1, 0), Plan: "free", Level: "over", Seen: enforcement.Seen{Applied: applied(t, cat, "free", "suspended")}},
			enforcement.Observed{Known: true, Quota: suspendedQ, Defaults: freeDefaults}, pol,
			[]string{"update_project restore"}, false},
		{"unknown observation: nothing", "free", 2000, enforcement.Memory{}, enforcement.Observed{}, pol, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := enforcement.Desired{ProjectID: "p-1", Plan: planOf(t, cat, c.plan), PeriodStart: period, Fresh: true,
				Usage: map[string]uint64{neon.MetricComputeUnitSeconds: c.usage}, Last: c.last}
			v := enforcement.Evaluate(d, c.pol, now)
			acts, pend := enforcement.PlanVerdict(v, c.obs, c.pol)
			var got []string
			for _, a := range acts {
				s := string(a.Kind) + " " + string(a.Reason)
				if a.EndpointID != "" {
					s += " " + a.EndpointID
				}
				if a.WakeRisk {
					s += " wake"
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || pend != c.pend {
				t.Fatalf("actions %v pending %v, want %v pending %v", got, pend, c.want, c.pend)
			}
			if len(enforcement.Plan(d, c.obs, c.pol, now)) != len(acts) {
				t.Fatal("Plan and PlanVerdict disagree")
			}
			// Applying the actions to the observation yields a state that plans nothing more.
			o := c.obs
			for _, a := range acts {
				switch a.Kind {
				case enforcement.ActionUpdateProject:
					if a.Quota != nil {
						o.Quota = *a.Quota
					}
					if a.Defaults != nil {
						if a.Defaults.AutoscalingLimitMinCU != 0 {
							o.Defaults.AutoscalingLimitMinCU = a.Defaults.AutoscalingLimitMinCU
						}
						if a.Defaults.AutoscalingLimitMaxCU != 0 {
							o.Defaults.AutoscalingLimitMaxCU = a.Defaults.AutoscalingLimitMaxCU
						}
						if a.Defaults.SuspendTimeoutSeconds != 0 {
							o.Defaults.SuspendTimeoutSeconds = a.Defaults.SuspendTimeoutSeconds
						}
					}
				case enforcement.ActionSuspendEndpoint, enforcement.ActionUpdateEndpoint:
					eps := append([]neon.Endpoint(nil), o.Endpoints...)
					for i := range eps {
						if eps[i].ID == a.EndpointID {
							if a.Kind == enforcement.ActionSuspendEndpoint {
								eps[i].CurrentState = "idle"
							} else {
								eps[i].AutoscalingLimitMinCU, eps[i].AutoscalingLimitMaxCU = a.MinCU, a.MaxCU
							}
						}
					}
					o.Endpoints = eps
				}
			}
			if again, _ := enforcement.PlanVerdict(v, o, c.pol); len(again) != 0 {
				t.Fatalf("after applying, a second plan still has %v", again)
			}
		})
	}
	_ = free
}
