package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// With orgs in two Neon accounts, enforcement's calls go with the key of the account holding
// the project: lists by their org, project calls by the org a list showed, and a project no
// list showed is asked of each account until one does not answer 404 (a foreign key's 404
// changes nothing).
func TestNeonRouter_SendsEachCallWithItsAccountsKey(t *testing.T) {
	s, err := sim.New(sim.Config{Projects: 40, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	launch, scale := s.Orgs()[1], s.Orgs()[2]
	inScale := map[string]bool{}
	for _, id := range scale.ProjectIDs {
		inScale[id] = true
	}
	var mu sync.Mutex
	var seen []string // "key path"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seen = append(seen, key+" "+r.URL.Path)
		mu.Unlock()
		// Account A's key is no member of the scale org: Neon answers 404 for its projects.
		for id := range inScale {
			if key == "key-a" && strings.Contains(r.URL.Path, "/projects/"+id) {
				http.Error(w, `{"code":"NOT_FOUND","message":"not found"}`, http.StatusNotFound)
				return
			}
		}
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	configEnv(t)
	t.Setenv("NEONMETER_NEON_API_URL", srv.URL+"/api/v2")
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	client := func(key string) *neon.Client {
		c, err := newAccountClient(cfg, Secret(key), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := newNeonRouter([]accountClient{
		{neonAccount{Name: "default", Orgs: []neonOrg{{ID: launch.ID}}}, client("key-a")},
		{neonAccount{Name: "b", Orgs: []neonOrg{{ID: scale.ID}}}, client("key-b")},
	})
	ctx := context.Background()
	last := func() string { mu.Lock(); defer mu.Unlock(); return seen[len(seen)-1] }

	unlisted := scale.ProjectIDs[0]
	if p, err := r.GetProject(ctx, unlisted); err != nil || p.ID != unlisted {
		t.Fatalf("unlisted scale project: %v, %v; want it found with the second account's key", p, err)
	}
	if got := last(); !strings.HasPrefix(got, "key-b ") {
		t.Fatalf("last request %q, want key-b after key-a's 404", got)
	}
	for _, err := range r.ListProjects(ctx, neon.ListProjectsQuery{OrgID: scale.ID, Limit: neon.MaxProjectsLimit}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	seen = nil
	mu.Unlock()
	if _, err := r.ListEndpoints(ctx, scale.ProjectIDs[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetProject(ctx, launch.ProjectIDs[0]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || !strings.HasPrefix(got[0], "key-b ") || !strings.HasPrefix(got[1], "key-a ") {
		t.Fatalf("requests %q: want the listed scale project with key-b only, then the launch project with key-a", got)
	}
	if _, err := r.GetProject(ctx, "no-such-project"); err == nil {
		t.Fatal("a project no account holds was found")
	}
}
