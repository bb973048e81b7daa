package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// findProject returns the first project of the org with the given profile.
func findProject(t testing.TB, s *sim.Sim, plan, profile string) sim.ProjectState {
	t.Helper()
	for _, id := range orgByPlan(t, s, plan).ProjectIDs {
		if st, _ := s.Project(id); st.Profile == profile {
			return st
		}
	}
	t.Fatalf("no %s project in the %s org", profile, plan)
	return sim.ProjectState{}
}

func patchQuota(t testing.TB, a *api, id string, quota map[string]any) []byte {
	t.Helper()
	status, _, body := a.do(http.MethodPatch, "/api/v2/projects/"+id, map[string]any{"project": map[string]any{"settings": map[string]any{"quota": quota}}})
	if status != 200 {
		t.Fatalf("PATCH quota %v: %d %s", quota, status, body)
	}
	return body
}

// TestQuota_Suspension follows Neon's quota semantics through a billing period: suspension at
// the hour after the counter reaches the quota, no compute while suspended (TryWake fails,
// counters stop), release when the quota is cleared, a fresh start in the next period, and no
// rewrite of hours before a suspension.
func TestQuota_Suspension(t *testing.T) {
	clk := testclock.New(t0) // 2026-11-20 10:30
	s := newSim(t, sim.Config{Projects: 200, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	st := findProject(t, s, "scale", "runaway")
	id := st.ID
	hour := func(h int) time.Time { return time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC) }

	settled := map[time.Time]int64{}
	for h := t0.Add(-72 * time.Hour).Truncate(time.Hour); h.Before(t0.Add(-3 * time.Hour)); h = h.Add(time.Hour) {
		settled[h] = s.Value(id, "compute_unit_seconds", h)
	}

	// A quota just above the counter: reached during the current hour, so suspended from 11:00.
	patchQuota(t, a, id, map[string]any{"compute_time_seconds": st.Counters.ComputeTimeSeconds + 1})
	if st, _ := s.Project(id); st.QuotaSuspended || st.Quota.ComputeTimeSeconds == 0 {
		t.Fatalf("suspended before the quota was reached: %+v", st)
	}
	if !s.TryWake(id) {
		t.Fatal("TryWake failed before the quota was reached")
	}
	clk.Add(31 * time.Minute) // 11:01
	st, _ = s.Project(id)
	if !st.QuotaSuspended {
		t.Fatalf("not suspended after the counter reached the quota: counters %+v quota %+v", st.Counters, st.Quota)
	}
	if s.TryWake(id) {
		t.Fatal("TryWake started a quota-suspended compute")
	}
	for _, ep := range st.Endpoints {
		if ep.Active {
			t.Fatalf("endpoint %s active while quota-suspended", ep.ID)
		}
	}
	held := st.Counters

	clk.Add(3*time.Hour + 29*time.Minute) // 14:30
	for h := 11; h < 14; h++ {
		if v := s.Value(id, "compute_unit_seconds", hour(h)); v != 0 {
			t.Fatalf("compute at %02d:00 while suspended: %d", h, v)
		}
		if v := s.Value(id, "root_branch_bytes_month", hour(h)); v == 0 {
			t.Fatalf("no storage at %02d:00 while suspended", h)
		}
	}
	if v := s.Value(id, "compute_unit_seconds", hour(10)); v == 0 {
		t.Fatal("the hour in which the quota was reached lost its usage")
	}
	for h, v := range settled {
		if got := s.Value(id, "compute_unit_seconds", h); got != v {
			t.Fatalf("hour %v before the suspension changed: %d → %d", h, v, got)
		}
	}
	if st, _ := s.Project(id); st.Counters.ComputeTimeSeconds != held.ComputeTimeSeconds || st.Counters.DataStorageBytesHour <= held.DataStorageBytesHour {
		t.Fatalf("counters while suspended: %+v, at suspension %+v", st.Counters, held)
	}

	// Clearing the quota releases the project at once; usage resumes from the next hour.
	patchQuota(t, a, id, map[string]any{"compute_time_seconds": 0})
	if st, _ := s.Project(id); st.QuotaSuspended || !s.TryWake(id) {
		t.Fatal("still suspended after the quota was cleared")
	}
	clk.Add(3 * time.Hour) // 17:30
	if v := s.Value(id, "compute_unit_seconds", hour(14)); v != 0 {
		t.Fatalf("compute in the hour of the release: %d", v)
	}
	if v := s.Value(id, "compute_unit_seconds", hour(15)); v == 0 {
		t.Fatal("no compute after the quota was cleared")
	}

	// A quota already exceeded suspends at once; the next period starts free, then the same
	// quota is reached again after its first hour.
	body := patchQuota(t, a, id, map[string]any{"active_time_seconds": 1})
	var resp struct {
		Operations []struct {
			Action string `json:"action"`
		} `json:"operations"`
	}
	decode(t, body, &resp)
	if len(resp.Operations) == 0 || resp.Operations[0].Action != "suspend_compute" {
		t.Fatalf("suspending an active runaway project: operations %+v", resp.Operations)
	}
	if st, _ := s.Project(id); !st.QuotaSuspended {
		t.Fatal("an exceeded quota did not suspend at once")
	}
	clk.Add(time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC).Sub(clk.Now()))
	if st, _ := s.Project(id); st.QuotaSuspended || !s.TryWake(id) || st.Counters.ActiveTimeSeconds != 0 {
		t.Fatalf("new period: suspended %v, counters %+v", st.QuotaSuspended, st.Counters)
	}
	clk.Add(time.Hour)
	if st, _ := s.Project(id); !st.QuotaSuspended {
		t.Fatal("quota not enforced again in the new period")
	}
}

// TestEndpoints_DisableAndCap: all endpoints disabled stops compute from the next hour; the
// read_write endpoint's max CU caps later hours.
func TestEndpoints_DisableAndCap(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 200, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	var capped, disabled sim.ProjectState
	for _, id := range append(orgByPlan(t, s, "launch").ProjectIDs, orgByPlan(t, s, "scale").ProjectIDs...) {
		st, _ := s.Project(id)
		if st.Profile != "runaway" {
			continue
		}
		if disabled.ID == "" {
			disabled = st
		} else if capped.ID == "" {
			capped = st
		}
	}
	if capped.ID == "" {
		t.Fatal("need two runaway projects")
	}
	for _, ep := range disabled.Endpoints {
		if status, _, body := a.do(http.MethodPatch, "/api/v2/projects/"+disabled.ID+"/endpoints/"+ep.ID, map[string]any{"endpoint": map[string]any{"disabled": true}}); status != 200 {
			t.Fatalf("disable: %d %s", status, body)
		}
	}
	ep0 := capped.Endpoints[0]
	if status, _, body := a.do(http.MethodPatch, "/api/v2/projects/"+capped.ID+"/endpoints/"+ep0.ID, map[string]any{"endpoint": map[string]any{"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 1}}); status != 200 {
		t.Fatalf("cap: %d %s", status, body)
	}
	if s.TryWake(disabled.ID) {
		t.Fatal("TryWake started a disabled compute")
	}
	clk.Add(4 * time.Hour)
	before, after := t0.Truncate(time.Hour), t0.Truncate(time.Hour).Add(2*time.Hour)
	if s.Value(disabled.ID, "compute_unit_seconds", before) == 0 || s.Value(disabled.ID, "compute_unit_seconds", after) != 0 {
		t.Fatalf("disabled: compute %d in the hour of the change, %d two hours later",
			s.Value(disabled.ID, "compute_unit_seconds", before), s.Value(disabled.ID, "compute_unit_seconds", after))
	}
	if v := s.Value(capped.ID, "compute_unit_seconds", after); v == 0 || v > 3600 {
		t.Fatalf("capped at 1 CU: %d CU-seconds in an hour", v)
	}
	if v := s.Value(capped.ID, "compute_unit_seconds", before); v <= 3600 {
		t.Fatalf("the cap rewrote the hour of the change: %d", v)
	}
	st, _ := s.Project(capped.ID)
	if st.Endpoints[0].MaxCU != 1 {
		t.Fatalf("max CU %v, want 1", st.Endpoints[0].MaxCU)
	}
	// Invalid limits are refused.
	if got := a.status(http.MethodPatch, "/api/v2/projects/"+capped.ID+"/endpoints/"+ep0.ID, map[string]any{"endpoint": map[string]any{"autoscaling_limit_min_cu": 4, "autoscaling_limit_max_cu": 2}}); got != 400 {
		t.Fatalf("min > max: status %d", got)
	}
}

// TestOperations_Locked: operations run for OperationDelay by the clock; mutations meanwhile get 423.
func TestOperations_Locked(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: clk.Now, OperationDelay: time.Minute})
	a := newAPI(t, s.Handler(), "")
	st, _ := s.Project(orgByPlan(t, s, "scale").ProjectIDs[0])
	ep := st.Endpoints[0].ID
	base := "/api/v2/projects/" + st.ID
	status, _, body := a.do(http.MethodPost, base+"/endpoints/"+ep+"/suspend", nil)
	if status != 200 {
		t.Fatalf("suspend: %d %s", status, body)
	}
	var resp struct {
		Operations []struct {
			ID, Action, Status string
		} `json:"operations"`
	}
	decode(t, body, &resp)
	if len(resp.Operations) != 1 || resp.Operations[0].Action != "suspend_compute" || resp.Operations[0].Status != "running" {
		t.Fatalf("suspend operations: %+v", resp.Operations)
	}
	opPath := base + "/operations/" + resp.Operations[0].ID
	var op struct {
		Operation struct{ Status string } `json:"operation"`
	}
	a.get(opPath, &op)
	if op.Operation.Status != "running" {
		t.Fatalf("operation %s right after creation", op.Operation.Status)
	}
	for _, m := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, base, map[string]any{"project": map[string]any{"name": "x"}}},
		{http.MethodPost, base + "/endpoints/" + ep + "/suspend", nil},
		{http.MethodPatch, base + "/endpoints/" + ep, map[string]any{"endpoint": map[string]any{"suspend_timeout_seconds": 300}}},
	} {
		if got := a.status(m.method, m.path, m.body); got != 423 {
			t.Errorf("%s %s during an operation: %d, want 423", m.method, m.path, got)
		}
	}
	clk.Add(61 * time.Second)
	a.get(opPath, &op)
	if op.Operation.Status != "finished" {
		t.Fatalf("operation %s after its delay", op.Operation.Status)
	}
	if got := a.status(http.MethodPatch, base, map[string]any{"project": map[string]any{"name": "renamed"}}); got != 200 {
		t.Fatalf("PATCH after the operation: %d", got)
	}
	if st, _ := s.Project(st.ID); st.Name != "renamed" || len(st.Operations) != 1 || st.Operations[0].Status != "finished" {
		t.Fatalf("project after rename: name %q operations %+v", st.Name, st.Operations)
	}
	if st, _ := s.Project(st.ID); st.Endpoints[0].Active {
		t.Fatal("endpoint active right after a suspend")
	}
}

// TestWakes: PATCH on an idle endpoint counts a wake (real Neon starts it to apply the change);
// on an active or already disabled one it does not; suspending and reading never do.
func TestWakes(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 200, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	idle := findProject(t, s, "scale", "idle")
	if idle.Endpoints[0].Active {
		t.Fatal("the idle project's compute is active")
	}
	runaway := findProject(t, s, "scale", "runaway")
	patch := func(id, ep string, body map[string]any) []string {
		t.Helper()
		status, _, b := a.do(http.MethodPatch, "/api/v2/projects/"+id+"/endpoints/"+ep, map[string]any{"endpoint": body})
		if status != 200 {
			t.Fatalf("PATCH endpoint: %d %s", status, b)
		}
		var resp struct {
			Operations []struct{ Action string } `json:"operations"`
		}
		decode(t, b, &resp)
		var actions []string
		for _, o := range resp.Operations {
			actions = append(actions, o.Action)
		}
		return actions
	}
	a.get("/api/v2/projects/"+idle.ID+"/endpoints", nil)
	a.get(consumptionURL(false, orgByPlan(t, s, "scale").ID, t0.Add(-2*time.Hour), t0, "hourly", v2Metrics, 100, ""), nil)
	a.status(http.MethodPost, "/api/v2/projects/"+idle.ID+"/endpoints/"+idle.Endpoints[0].ID+"/suspend", nil)
	if w := s.Stats().Wakes; w != 0 {
		t.Fatalf("reads and suspends counted %d wakes", w)
	}
	if ops := patch(idle.ID, idle.Endpoints[0].ID, map[string]any{"suspend_timeout_seconds": 300}); len(ops) != 2 || ops[1] != "suspend_compute" {
		t.Fatalf("PATCH on an idle compute: operations %v, want apply_config then suspend_compute", ops)
	}
	if w := s.Stats().Wakes; w != 1 {
		t.Fatalf("wakes %d after a PATCH on an idle compute, want 1", w)
	}
	patch(runaway.ID, runaway.Endpoints[0].ID, map[string]any{"suspend_timeout_seconds": 300})
	if w := s.Stats().Wakes; w != 1 {
		t.Fatalf("a PATCH on an active compute counted a wake (%d)", w)
	}
	clk.Add(time.Minute)
	patch(idle.ID, idle.Endpoints[0].ID, map[string]any{"disabled": true})
	clk.Add(time.Minute)
	patch(idle.ID, idle.Endpoints[0].ID, map[string]any{"suspend_timeout_seconds": 600})
	if w := s.Stats().Wakes; w != 2 {
		t.Fatalf("wakes %d, want 2: disabling wakes, a PATCH on a disabled compute does not", w)
	}
}

// TestProject_Counters: counters are the sums of the current period's complete hours.
func TestProject_Counters(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 3, 5, 20, 0, 0, time.UTC))
	s := newSim(t, sim.Config{Projects: 40, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	read := clk.Now()
	for _, id := range orgByPlan(t, s, "business").ProjectIDs {
		var resp struct {
			Project struct {
				ActiveTimeSeconds      int64  `json:"active_time_seconds"`
				DataStorageBytesHour   int64  `json:"data_storage_bytes_hour"`
				ConsumptionPeriodStart string `json:"consumption_period_start"`
				Owner                  struct {
					SubscriptionType string `json:"subscription_type"`
				} `json:"owner"`
			} `json:"project"`
		}
		clk.Add(read.Sub(clk.Now()))
		a.get("/api/v2/projects/"+id, &resp)
		clk.Add(3 * time.Hour) // counters use final values: let the provisional hours settle
		var active, storage int64
		for h := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC); h.Before(read.Truncate(time.Hour)); h = h.Add(time.Hour) {
			active += s.Value(id, "active_time_seconds", h)
			storage += s.Value(id, "data_storage_bytes_hour", h)
		}
		p := resp.Project
		if p.ActiveTimeSeconds != active || p.DataStorageBytesHour != storage || p.ConsumptionPeriodStart != "2026-11-01T00:00:00Z" || p.Owner.SubscriptionType != "business" {
			t.Fatalf("%s: %+v, want active %d storage %d", id, p, active, storage)
		}
	}
}
