package neon_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/neonmeter/neonmeter/neon"
)

// idsQuery asks for n projects by id (proj-00000000 …) over 2 hours.
func idsQuery(n int, b *neon.AttemptBudget) neon.ConsumptionQuery {
	q := hourlyQuery("org-1", 2)
	q.Metrics, q.Limit, q.Budget = []string{neon.MetricComputeUnitSeconds}, 100, b
	for i := range n {
		q.ProjectIDs = append(q.ProjectIDs, projectID(i))
	}
	return q
}

// A listing by project_ids ends once every project asked for came back: a full page of 100
// with a cursor costs one request, not a second one to learn it was the last.
func TestConsumptionV2_ProjectIDsEndWithoutAnExtraRequest(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeJSON(w, 200, buildPage(pageSpec{projects: len(r.URL.Query()["project_ids"]), hours: 2,
			metrics: []string{neon.MetricComputeUnitSeconds}, cursor: "more"}))
	})
	c := newClient(t, testConfig(srv.URL))
	pages, err := collect(c.ConsumptionV2(t.Context(), idsQuery(100, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.n.Load(); got != 1 || len(pages) != 1 || len(pages[0].Projects) != 100 || pages[0].Cursor != "" {
		t.Fatalf("%d requests, %d pages: want one request and one last page of 100", got, len(pages))
	}
}

// A project Neon returns that was not asked for makes the page a bad response.
func TestConsumptionV2_ProjectIDsRefuseOthers(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeJSON(w, 200, buildPage(pageSpec{firstProject: 5, projects: 2, hours: 2, metrics: []string{neon.MetricComputeUnitSeconds}}))
	})
	cfg := testConfig(srv.URL)
	cfg.MaxRetries = -1
	_, err := collect(newClient(t, cfg).ConsumptionV2(t.Context(), idsQuery(3, nil)))
	if !errors.Is(err, neon.ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
	mentions(t, err, "proj-00000005", "not among the project_ids requested")
	q := idsQuery(2, nil)
	q.ProjectIDs[1] = q.ProjectIDs[0]
	if _, err := collect(newClient(t, cfg).ConsumptionV2(t.Context(), q)); err == nil {
		t.Fatal("a project id listed twice was accepted")
	}
}

// An attempt budget counts every attempt, retries included, and the client never sends one
// beyond it: the request that would exceed it fails with ErrAttemptBudget.
func TestAttemptBudget_RetriesCountAndNothingBeyond(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n%3 != 0 { // two 429s, then an answer
			generalError(w, r, http.StatusTooManyRequests, "RATE_LIMITED", "slow down")
			return
		}
		writeJSON(w, 200, buildPage(pageSpec{projects: 3, hours: 2, metrics: []string{neon.MetricComputeUnitSeconds}}))
	})
	c := newClient(t, testConfig(srv.URL))
	b := neon.NewAttemptBudget(5)
	if _, err := collect(c.ConsumptionV2(t.Context(), idsQuery(3, b))); err != nil {
		t.Fatalf("first request within its budget: %v", err)
	}
	if b.Used() != 3 || b.Left() != 2 || srv.n.Load() != 3 {
		t.Fatalf("used %d, left %d, sent %d: want 3 attempts counted and sent", b.Used(), b.Left(), srv.n.Load())
	}
	_, err := collect(c.ConsumptionV2(t.Context(), idsQuery(3, b)))
	if !errors.Is(err, neon.ErrAttemptBudget) {
		t.Fatalf("second request after 2 of 3 attempts: err = %v, want ErrAttemptBudget", err)
	}
	mentions(t, err, "429", "all 5 attempts")
	if srv.n.Load() != 5 || b.Used() != 5 || b.Left() != 0 {
		t.Fatalf("sent %d, used %d: want exactly the budget of 5", srv.n.Load(), b.Used())
	}
	if _, err := collect(c.ConsumptionV2(t.Context(), idsQuery(3, b))); !errors.Is(err, neon.ErrAttemptBudget) || srv.n.Load() != 5 {
		t.Fatalf("a spent budget: err = %v, %d sent", err, srv.n.Load())
	}
	// Without a budget nothing is capped.
	if _, err := collect(c.ConsumptionV2(t.Context(), idsQuery(3, nil))); err != nil {
		t.Fatal(err)
	}
}
