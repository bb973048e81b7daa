package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// TestLaunchCaveat_SuspendedComputeRestartsOnConnection: with the Launch caveat (Neon API notes
// §6.3) a launch project's quota counters stay 0, so active_time_seconds: 1 never holds its
// computes; a compute suspended by hand restarts on the next client connection (TryWake), and
// the project list's compute_last_active_at moves to that instant. A scale project's quota
// still holds.
func TestLaunchCaveat_SuspendedComputeRestartsOnConnection(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 200, Seed: 1, Now: clk.Now, LaunchCaveat: true})
	a := newAPI(t, s.Handler(), "")
	lp := findProject(t, s, "launch", "runaway")
	if lp.Counters.ActiveTimeSeconds != 0 || lp.Counters.ComputeTimeSeconds != 0 {
		t.Fatalf("launch counters under the caveat: %+v, want active and compute time 0", lp.Counters)
	}
	patchQuota(t, a, lp.ID, map[string]any{"active_time_seconds": 1})
	for _, ep := range lp.Endpoints {
		if st := a.status(http.MethodPost, "/api/v2/projects/"+lp.ID+"/endpoints/"+ep.ID+"/suspend", nil); st != http.StatusOK {
			t.Fatalf("suspend %s: %d", ep.ID, st)
		}
	}
	suspendedAt := clk.Now()
	lastActive := func() (time.Time, string) {
		t.Helper()
		var got struct {
			Project struct {
				ComputeLastActiveAt time.Time `json:"compute_last_active_at"`
			} `json:"project"`
		}
		a.get("/api/v2/projects/"+lp.ID, &got)
		var eps struct {
			Endpoints []struct {
				ID           string `json:"id"`
				CurrentState string `json:"current_state"`
			} `json:"endpoints"`
		}
		a.get("/api/v2/projects/"+lp.ID+"/endpoints", &eps)
		return got.Project.ComputeLastActiveAt, eps.Endpoints[0].CurrentState
	}
	clk.Add(7 * time.Minute)
	if at, state := lastActive(); state != "idle" || at.After(suspendedAt) {
		t.Fatalf("after the suspend: %s, compute_last_active_at %v (suspended at %v)", state, at, suspendedAt)
	}
	if st, _ := s.Project(lp.ID); st.QuotaSuspended {
		t.Fatal("the quota holds a launch project although its counters stay 0")
	}
	var conn struct {
		Running bool `json:"running"`
	}
	if st, _, body := a.do(http.MethodPost, "/debug/connect/"+lp.ID, nil); st != http.StatusOK || jsonUnmarshal(body, &conn) != nil || !conn.Running {
		t.Fatalf("a client connection (POST /debug/connect) did not restart the suspended launch compute: %d %s", st, body)
	}
	if at, state := lastActive(); state != "active" || !at.Equal(clk.Now()) {
		t.Fatalf("after the connection: %s, compute_last_active_at %v, want active at %v", state, at, clk.Now())
	}
	var list struct {
		Projects []struct {
			ID                  string    `json:"id"`
			ComputeLastActiveAt time.Time `json:"compute_last_active_at"`
		} `json:"projects"`
	}
	a.get("/api/v2/projects?limit=400&org_id="+orgByPlan(t, s, "launch").ID, &list)
	found := false
	for _, p := range list.Projects {
		if p.ID == lp.ID {
			found = p.ComputeLastActiveAt.Equal(clk.Now())
		}
	}
	if !found {
		t.Fatalf("the project list does not show %s active at %v", lp.ID, clk.Now())
	}

	// A scale project's counters count: the same quota holds it and a connection fails.
	sp := findProject(t, s, "scale", "runaway")
	patchQuota(t, a, sp.ID, map[string]any{"active_time_seconds": 1})
	if st, _ := s.Project(sp.ID); !st.QuotaSuspended || s.TryWake(sp.ID) {
		t.Fatalf("scale project: quota-suspended %v; want held and not woken", st.QuotaSuspended)
	}
}

// TestDeleteProject: a deleted project answers 404 on its routes and leaves the project list.
func TestDeleteProject(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 40, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	id := orgByPlan(t, s, "scale").ProjectIDs[0]
	if !s.DeleteProject(id) || s.DeleteProject("no-such-project") {
		t.Fatal("DeleteProject: want true for a project, false for an unknown id")
	}
	for _, path := range []string{"/api/v2/projects/" + id, "/api/v2/projects/" + id + "/endpoints"} {
		if st := a.status(http.MethodGet, path, nil); st != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, st)
		}
	}
	if st := a.status(http.MethodPatch, "/api/v2/projects/"+id, map[string]any{"project": map[string]any{"name": "x"}}); st != http.StatusNotFound {
		t.Fatalf("PATCH a deleted project: %d, want 404", st)
	}
	var list struct {
		Projects []struct {
			ID string `json:"id"`
		} `json:"projects"`
	}
	a.get("/api/v2/projects?limit=400", &list)
	for _, p := range list.Projects {
		if p.ID == id {
			t.Fatal("the list still shows the deleted project")
		}
	}
	if len(list.Projects) != 39 {
		t.Fatalf("the list shows %d projects, want 39", len(list.Projects))
	}
}
