package sim_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/spectest"
	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// TestSim_Conformance drives every route, with success and each error status, through the spec
// Recorder: every request and response must validate against Neon's OpenAPI spec.
func TestSim_Conformance(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 40, Seed: 7, Now: clk.Now, APIKey: "key", OperationDelay: time.Minute})
	rec := spectest.Load(t).NewRecorder(s.Handler())
	a := newAPI(t, rec, "key")
	now := clk.Now()
	launch, scale := orgByPlan(t, s, "launch"), orgByPlan(t, s, "scale")
	legacy, free := orgByPlan(t, s, "business"), orgByPlan(t, s, "free")

	// Consumption, v2: every granularity, paginated, for both v2 orgs.
	windows := []struct {
		gran     string
		from, to time.Time
	}{
		{"hourly", now.Add(-72 * time.Hour), now.Add(time.Hour)},
		{"daily", now.AddDate(0, 0, -45), now.AddDate(0, 0, 1)},
		{"monthly", now.AddDate(0, -11, 0), now.AddDate(0, 1, 0)},
	}
	for _, org := range []sim.Org{launch, scale} {
		for _, w := range windows {
			ids, vals := a.allV2(org.ID, w.from, w.to, w.gran, v2Metrics, 7)
			if !slices.Equal(ids, org.ProjectIDs) {
				t.Fatalf("%s %s: projects %v, want %v", org.ID, w.gran, ids, org.ProjectIDs)
			}
			if len(vals) == 0 {
				t.Fatalf("%s %s: no values", org.ID, w.gran)
			}
		}
	}
	// CSV metrics and a project_ids filter. Outside the recorder: the spec's project_ids pattern
	// nests repeat counts beyond what Go's regexp accepts, so spectest cannot validate it.
	var pg v2Page
	plain := newAPI(t, s.Handler(), "key")
	plain.get(consumptionURL(false, scale.ID, now.Add(-6*time.Hour), now, "hourly", []string{"compute_unit_seconds,root_branch_bytes_month"}, 0, "")+
		"&project_ids="+scale.ProjectIDs[1]+","+scale.ProjectIDs[0], &pg)
	if len(pg.Projects) != 2 || pg.Projects[0].ProjectID != scale.ProjectIDs[0] {
		t.Fatalf("project_ids filter: got %+v", pg.Projects)
	}

	// Consumption, legacy: every granularity, default and all metrics.
	for _, w := range windows {
		for _, metrics := range [][]string{nil, legacyMetrics} {
			var lp legacyPage
			a.get(consumptionURL(true, legacy.ID, w.from, w.to, w.gran, metrics, 100, ""), &lp)
			if len(lp.Projects) != len(legacy.ProjectIDs) {
				t.Fatalf("legacy %s: %d projects, want %d", w.gran, len(lp.Projects), len(legacy.ProjectIDs))
			}
		}
	}
	a.get(consumptionURL(true, "", now.Add(-3*time.Hour), now, "hourly", nil, 0, ""), nil) // org_id optional

	// Consumption errors, all with spec-valid requests.
	hourly := func(legacyRoute bool, org string, metrics []string) string {
		return consumptionURL(legacyRoute, org, now.Add(-3*time.Hour), now, "hourly", metrics, 0, "")
	}
	for _, c := range []struct {
		name string
		path string
		want int
	}{
		{"unknown metric", hourly(false, scale.ID, []string{"cpu_seconds"}), 400},
		{"legacy metric on v2", hourly(false, scale.ID, []string{"active_time_seconds"}), 400},
		{"bad cursor", hourly(false, scale.ID, v2Metrics) + "&cursor=nobody-here-00000000", 400},
		{"free org v2", hourly(false, free.ID, v2Metrics), 403},
		{"legacy org v2", hourly(false, legacy.ID, v2Metrics), 403},
		{"launch org legacy", hourly(true, launch.ID, nil), 403},
		{"unknown org", hourly(false, "org-nobody", v2Metrics), 404},
		{"hourly window", consumptionURL(false, scale.ID, now.Add(-200*time.Hour), now, "hourly", v2Metrics, 0, ""), 406},
		{"daily window", consumptionURL(false, scale.ID, now.AddDate(0, 0, -70), now, "daily", v2Metrics, 0, ""), 406},
		{"monthly window", consumptionURL(true, legacy.ID, now.AddDate(-2, 0, 0), now, "monthly", nil, 0, ""), 406},
		{"before 2024-03", consumptionURL(false, scale.ID, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), now, "monthly", v2Metrics, 0, ""), 406},
	} {
		if got := a.status(http.MethodGet, c.path, nil); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}

	// Projects: paginate everything, per org, search.
	var all []string
	cursor := ""
	for {
		var lp struct {
			Projects []struct {
				ID string `json:"id"`
			} `json:"projects"`
			Pagination *struct {
				Cursor string `json:"cursor"`
			} `json:"pagination"`
		}
		path := "/api/v2/projects?limit=9"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		a.get(path, &lp)
		for _, p := range lp.Projects {
			all = append(all, p.ID)
		}
		if lp.Pagination == nil || len(lp.Projects) < 9 {
			break
		}
		cursor = lp.Pagination.Cursor
	}
	if len(all) != 40 {
		t.Fatalf("listProjects: %d projects, want 40", len(all))
	}
	a.get("/api/v2/projects?org_id="+scale.ID+"&limit=400&timeout=1000", nil)
	a.get("/api/v2/projects?search="+scale.ProjectIDs[0][:6], nil)
	if got := a.status(http.MethodGet, "/api/v2/projects?org_id=org-nobody", nil); got != 404 {
		t.Errorf("listProjects unknown org: %d", got)
	}

	// One project through every other route.
	pid := scale.ProjectIDs[0]
	a.get("/api/v2/projects/"+pid, nil)
	if got := a.status(http.MethodGet, "/api/v2/projects/nobody-here-00000000", nil); got != 404 {
		t.Errorf("getProject unknown: %d", got)
	}
	var eps struct {
		Endpoints []struct {
			ID string `json:"id"`
		} `json:"endpoints"`
	}
	a.get("/api/v2/projects/"+pid+"/endpoints", &eps)
	ep := eps.Endpoints[0].ID
	status, _, body := a.do(http.MethodPatch, "/api/v2/projects/"+pid, map[string]any{"project": map[string]any{
		"settings":                  map[string]any{"quota": map[string]any{"active_time_seconds": 1}},
		"default_endpoint_settings": map[string]any{"autoscaling_limit_max_cu": 2, "suspend_timeout_seconds": 600},
	}})
	if status != 200 {
		t.Fatalf("updateProject: %d %s", status, body)
	}
	var susp struct {
		Operations []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"operations"`
	}
	clk.Add(2 * time.Minute)
	status, _, body = a.do(http.MethodPost, "/api/v2/projects/"+pid+"/endpoints/"+ep+"/suspend", nil)
	if status != 200 {
		t.Fatalf("suspend: %d %s", status, body)
	}
	decode(t, body, &susp)
	// The suspend operation runs for OperationDelay: mutations meanwhile get 423.
	if got := a.status(http.MethodPatch, "/api/v2/projects/"+pid+"/endpoints/"+ep, map[string]any{"endpoint": map[string]any{"disabled": true}}); got != 423 {
		t.Errorf("PATCH during operation: %d, want 423", got)
	}
	a.get("/api/v2/projects/"+pid+"/operations/"+susp.Operations[0].ID, nil)
	if got := a.status(http.MethodGet, "/api/v2/projects/"+pid+"/operations/00000000-0000-4000-8000-000000000000", nil); got != 404 {
		t.Errorf("getProjectOperation unknown: %d", got)
	}
	clk.Add(2 * time.Minute)
	status, _, body = a.do(http.MethodPatch, "/api/v2/projects/"+pid+"/endpoints/"+ep, map[string]any{"endpoint": map[string]any{"disabled": false, "autoscaling_limit_max_cu": 1, "autoscaling_limit_min_cu": 0.25}})
	if status != 200 {
		t.Fatalf("updateProjectEndpoint: %d %s", status, body)
	}
	if got := a.status(http.MethodPost, "/api/v2/projects/"+pid+"/endpoints/ep-nobody-00000000/suspend", nil); got != 404 {
		t.Errorf("suspend unknown endpoint: %d", got)
	}

	// Authentication.
	anon := &api{t: t, srv: a.srv}
	if got := anon.status(http.MethodGet, "/api/v2/projects", nil); got != 401 {
		t.Errorf("no key: %d, want 401", got)
	}

	// Injected status faults and rate limiting, on a separate simulator through a recorder too.
	s2 := newSim(t, sim.Config{Projects: 8, Seed: 7, Now: clk.Now, ConsumptionRatePerMin: 1, ConsumptionBurst: 1})
	rec2 := spectest.Load(t).NewRecorder(s2.Handler())
	a2 := newAPI(t, rec2, "")
	s2.SetFaults(sim.Faults{Rate500: 0.25, Rate503: 0.25, Rate423: 0.25, Rate429: 0.25, Seed: 1})
	seen := map[int]bool{}
	for range 40 {
		seen[a2.status(http.MethodGet, "/api/v2/projects/"+s2.Orgs()[1].ProjectIDs[0], nil)] = true
	}
	for _, code := range []int{429, 500, 503, 423} {
		if !seen[code] {
			t.Errorf("injected %d never seen (seen %v)", code, seen)
		}
	}
	s2.SetFaults(sim.Faults{})
	path := hourly(false, s2.Orgs()[2].ID, v2Metrics)
	if got := a2.status(http.MethodGet, path, nil); got != 200 {
		t.Errorf("first consumption call: %d", got)
	}
	if got := a2.status(http.MethodGet, path, nil); got != 429 {
		t.Errorf("second consumption call within the bucket: %d, want 429", got)
	}

	rec.Check(t)
	rec2.Check(t)
	ops := rec.Operations()
	for _, op := range []string{"getConsumptionHistoryPerProjectV2", "getConsumptionHistoryPerProject", "listProjects",
		"getProject", "updateProject", "listProjectEndpoints", "suspendProjectEndpoint", "updateProjectEndpoint", "getProjectOperation"} {
		if ops[op] == 0 {
			t.Errorf("operation %s never exercised", op)
		}
	}
	if t.Failed() {
		t.Logf("operations seen: %v", ops)
	}
}

func decode(t testing.TB, body []byte, out any) {
	t.Helper()
	if err := jsonUnmarshal(body, out); err != nil {
		t.Fatalf("decode %s: %v", strings.TrimSpace(string(body[:min(len(body), 200)])), err)
	}
}
