package sim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// TestFaults_Rates: each injected fault appears at about its configured rate, is marked, and is
// counted in Stats.Faults.
func TestFaults_Rates(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	s.SetFaults(sim.Faults{Rate429: 0.1, Rate500: 0.1, Rate503: 0.05, Rate423: 0.05, TruncatedRate: 0.05, MalformedRate: 0.05, Seed: 3})
	path := "/api/v2/projects/" + orgByPlan(t, s, "scale").ProjectIDs[0]
	const n = 2000
	counts := map[string]int{}
	for range n {
		status, h, body := a.do(http.MethodGet, path, nil)
		kind := "ok"
		switch {
		case status != 200:
			kind = http.StatusText(status)
			if !bytes.Contains(body, []byte(`"code":`)) {
				t.Fatalf("status %d without a GeneralError: %s", status, body)
			}
		case !json.Valid(body):
			kind = "truncated"
		case bytes.HasPrefix(body, []byte(`{"neonsim_fault"`)):
			kind = "malformed"
			var p struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			}
			if json.Unmarshal(body, &p) == nil {
				t.Fatalf("malformed body decodes as a project: %s", body)
			}
		}
		if (kind != "ok") != (h.Get(sim.FaultHeader) != "") {
			t.Fatalf("%s response, fault header %q", kind, h.Get(sim.FaultHeader))
		}
		if sim.InjectedFault(status, body) != (kind == "truncated" || kind == "malformed") {
			t.Fatalf("InjectedFault wrong for a %s response", kind)
		}
		counts[kind]++
	}
	for kind, rate := range map[string]float64{
		"Too Many Requests": 0.1, "Internal Server Error": 0.1, "Service Unavailable": 0.05, "Locked": 0.05,
		"truncated": 0.05, "malformed": 0.05, "ok": 0.6,
	} {
		want := rate * n
		if got := float64(counts[kind]); got < 0.7*want || got > 1.3*want {
			t.Errorf("%s: %v of %d, want about %v", kind, got, n, want)
		}
	}
	st := s.Stats()
	if st.Faults != int64(n-counts["ok"]) || st.Requests["GET /projects/{project_id}"] != n || st.RateLimited != 0 {
		t.Errorf("stats %+v, want %d faults and %d requests", st, n-counts["ok"], n)
	}
	// Faults stop when cleared.
	s.SetFaults(sim.Faults{})
	for range 50 {
		if status := a.status(http.MethodGet, path, nil); status != 200 {
			t.Fatalf("status %d without faults", status)
		}
	}
}

// TestFaults_ConsumptionBodies: malformed consumption pages carry wrong types, truncated ones are
// cut, and both are recognized by InjectedFault.
func TestFaults_ConsumptionBodies(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 40, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	path := consumptionURL(false, orgByPlan(t, s, "scale").ID, t0.Add(-4*time.Hour), t0, "hourly", v2Metrics, 5, "")
	s.SetFaults(sim.Faults{MalformedRate: 1, Seed: 1})
	shapes := map[string]bool{}
	for range 6 {
		status, _, body := a.do(http.MethodGet, path, nil)
		var pg v2Page
		err := json.Unmarshal(body, &pg)
		if status != 200 || !json.Valid(body) || err == nil || !sim.InjectedFault(status, body) {
			t.Fatalf("malformed page: status %d, decode error %v: %.200s", status, err, body)
		}
		if bytes.Contains(body, []byte(`"projects":"malformed"`)) {
			shapes["projects as a string"] = true
		} else if bytes.Contains(body, []byte(`"value":"`)) {
			shapes["value as a string"] = true
		}
	}
	if len(shapes) < 2 {
		t.Errorf("malformed pages have a single shape: %v", shapes)
	}
	s.SetFaults(sim.Faults{TruncatedRate: 1, Seed: 1})
	status, _, body := a.do(http.MethodGet, path, nil)
	if status != 200 || json.Valid(body) || !sim.InjectedFault(status, body) {
		t.Fatalf("truncated page: status %d valid %v", status, json.Valid(body))
	}
	s.SetFaults(sim.Faults{})
	status, _, body = a.do(http.MethodGet, path, nil)
	if status != 200 || sim.InjectedFault(status, body) {
		t.Fatal("a clean page is flagged as a fault")
	}
}

// TestFaults_RepeatPage: a repeated page is the previous page, cursor included.
func TestFaults_RepeatPage(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 60, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale").ID
	url := func(cursor string) string {
		return consumptionURL(false, org, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 4, cursor)
	}
	s.SetFaults(sim.Faults{RepeatPageRate: 0.5, Seed: 9})
	first := a.get(url(""), nil) // no cursor: never repeated
	var p1 v2Page
	decode(t, first, &p1)
	repeats, fresh := 0, 0
	for range 40 {
		body := a.get(url(p1.Pagination.Cursor), nil)
		if bytes.Equal(body, first) {
			repeats++
			continue
		}
		var p2 v2Page
		decode(t, body, &p2)
		if p2.Projects[0].ProjectID == p1.Projects[0].ProjectID {
			t.Fatalf("repeated page differs from the previous one")
		}
		fresh++
	}
	if repeats < 8 || fresh < 8 {
		t.Fatalf("repeat rate 0.5: %d repeats, %d fresh pages", repeats, fresh)
	}
	if st := s.Stats(); st.Faults != int64(repeats) {
		t.Fatalf("stats faults %d, repeats %d", st.Faults, repeats)
	}
}

// TestFaults_Unavailable: GET /projects moves the last projects of a page to unavailable_project_ids.
func TestFaults_Unavailable(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 60, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	s.SetFaults(sim.Faults{UnavailableRate: 1, Seed: 1})
	var resp struct {
		Projects []struct {
			ID string `json:"id"`
		} `json:"projects"`
		Unavailable []string `json:"unavailable_project_ids"`
		Pagination  struct {
			Cursor string `json:"cursor"`
		} `json:"pagination"`
	}
	a.get("/api/v2/projects?limit=20", &resp)
	if len(resp.Unavailable) == 0 || len(resp.Projects)+len(resp.Unavailable) != 20 || resp.Pagination.Cursor != resp.Unavailable[len(resp.Unavailable)-1] {
		t.Fatalf("unavailable page: %d projects, unavailable %v, cursor %s", len(resp.Projects), resp.Unavailable, resp.Pagination.Cursor)
	}
	// Other routes are unaffected by this fault.
	a.get(consumptionURL(false, orgByPlan(t, s, "scale").ID, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 4, ""), nil)
	if st := s.Stats(); st.Faults != 1 {
		t.Fatalf("faults %d, want 1", st.Faults)
	}
}

// TestFaults_Slow: slow responses still answer correctly and count as faults.
func TestFaults_Slow(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	s.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: time.Millisecond, Seed: 1})
	for range 5 {
		a.get("/api/v2/projects", nil)
	}
	if st := s.Stats(); st.Faults != 5 {
		t.Fatalf("faults %d after 5 slow requests", st.Faults)
	}
}

func TestAPIKey(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: testclock.New(t0).Now, APIKey: "secret"})
	a := newAPI(t, s.Handler(), "")
	for _, key := range []string{"", "wrong", "secret2"} {
		a.key = key
		if got := a.status(http.MethodGet, "/api/v2/projects", nil); got != 401 {
			t.Errorf("key %q: status %d, want 401", key, got)
		}
	}
	a.key = "secret"
	a.get("/api/v2/projects", nil)
	a.key = ""
	a.get("/debug/stats", nil) // debug routes need no key
	if st := s.Stats(); st.Requests["GET /projects"] != 4 {
		t.Errorf("requests %v, want 4 on GET /projects", st.Requests)
	}
}

// TestRateLimit: token buckets answer 429, count them, put Retry-After on every other one, and
// keep the consumption bucket apart from the general one.
func TestRateLimit(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: testclock.New(t0).Now, GeneralRatePerMin: 1, GeneralBurst: 2, ConsumptionRatePerMin: 1})
	a := newAPI(t, s.Handler(), "")
	var statuses []int
	retryAfter := 0
	for range 4 {
		status, h, _ := a.do(http.MethodGet, "/api/v2/projects", nil)
		statuses = append(statuses, status)
		if h.Get("Retry-After") != "" {
			retryAfter++
		}
	}
	if !slices.Equal(statuses, []int{200, 200, 429, 429}) || retryAfter != 1 {
		t.Fatalf("statuses %v with %d Retry-After headers, want 200 200 429 429 and one", statuses, retryAfter)
	}
	path := consumptionURL(false, orgByPlan(t, s, "scale").ID, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 0, "")
	if got := a.status(http.MethodGet, path, nil); got != 200 {
		t.Fatalf("consumption with its own bucket: %d", got)
	}
	if got := a.status(http.MethodGet, consumptionURL(true, "", t0.Add(-3*time.Hour), t0, "hourly", nil, 0, ""), nil); got != 429 {
		t.Fatalf("legacy route shares the consumption bucket: got %d", got)
	}
	if st := s.Stats(); st.RateLimited != 3 || st.ConsumptionRequests != 2 {
		t.Fatalf("stats %+v, want 3 rate-limited and 2 consumption requests", st)
	}
}

func TestDebugRoutes(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 1, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	id := orgByPlan(t, s, "scale").ProjectIDs[0]
	var truth struct {
		Values []sim.TruthValue `json:"values"`
	}
	a.get("/debug/truth?project_id="+id+"&metric=root_branch_bytes_month&from=2026-11-19T00:00:00Z&to=2026-11-20T12:00:00Z", &truth)
	if len(truth.Values) != 36 {
		t.Fatalf("%d hours of truth, want 36", len(truth.Values))
	}
	for _, v := range truth.Values {
		if v.Value != s.Value(id, "root_branch_bytes_month", v.Hour) {
			t.Fatalf("truth at %v: %d, Value %d", v.Hour, v.Value, s.Value(id, "root_branch_bytes_month", v.Hour))
		}
	}
	if truth.Values[0].Value == 0 || truth.Values[35].Value != 0 {
		t.Fatalf("truth has no storage in the past or has some in the future: %+v", truth.Values)
	}
	var st sim.ProjectState
	a.get("/debug/projects/"+id, &st)
	if st.ID != id || len(st.Endpoints) == 0 {
		t.Fatalf("debug project: %+v", st)
	}
	var stats sim.Stats
	a.get("/debug/stats", &stats)
	if got := a.status(http.MethodGet, "/debug/truth?project_id="+id+"&metric=nope", nil); got != 400 {
		t.Fatalf("unknown metric: %d", got)
	}
	if got := a.status(http.MethodGet, "/api/v2/nothing-here", nil); got != 404 {
		t.Fatalf("unknown route: %d", got)
	}
}
