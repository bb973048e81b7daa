package neon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/neon"
)

// pager serves total projects in pages of the requested limit; the cursor is the index of the
// next project. hook may replace a response (return true when it wrote one).
type pager struct {
	total    int
	hours    int
	metrics  []string
	noCursor bool // omit pagination on the last (possibly full) page
	hook     func(w http.ResponseWriter, r *http.Request, n int64, start, limit int) bool
}

func (p *pager) serve(t *testing.T) *countingServer {
	return serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		start := 0
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
		}
		if p.hook != nil && p.hook(w, r, n, start, limit) {
			return
		}
		count := min(limit, max(p.total-start, 0))
		cursor := "c" + strconv.Itoa(start+count)
		if p.noCursor && start+count >= p.total {
			cursor = ""
		}
		writeJSON(w, 200, buildPage(pageSpec{firstProject: start, projects: count, hours: p.hours, metrics: p.metrics, cursor: cursor}))
	})
}

func projectIDs(pages []*neon.ConsumptionPage) []string {
	var ids []string
	for _, p := range pages {
		for _, pc := range p.Projects {
			ids = append(ids, pc.ProjectID)
		}
	}
	return ids
}

func TestConsumptionV2_PaginationEnds(t *testing.T) {
	cases := []struct {
		name     string
		total    int
		noCursor bool
		wantReqs int64
	}{
		{"short last page", 250, false, 3},
		{"full last page, then empty page", 200, false, 3},
		{"full last page without pagination", 200, true, 2},
		{"no projects", 0, false, 1},
		{"one short page", 5, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := (&pager{total: tc.total, hours: 2, metrics: neon.V2Metrics(), noCursor: tc.noCursor}).serve(t)
			c := newClient(t, testConfig(srv.URL))
			pages, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 2)))
			if err != nil {
				t.Fatal(err)
			}
			ids := projectIDs(pages)
			if len(ids) != tc.total {
				t.Fatalf("%d projects, want %d", len(ids), tc.total)
			}
			for i, id := range ids {
				if id != projectID(i) {
					t.Fatalf("project %d is %s", i, id)
				}
			}
			if n := srv.n.Load(); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
			// A short last page is known to be the last; a full one is not until the next answer.
			if len(pages) > 0 && tc.total%100 != 0 && pages[len(pages)-1].Cursor != "" {
				t.Errorf("last page carries cursor %q", pages[len(pages)-1].Cursor)
			}
			if st := c.Stats(); st.Retries != 0 {
				t.Errorf("%d retries", st.Retries)
			}
		})
	}
}

func TestConsumptionV2_ReplayedPages(t *testing.T) {
	cases := []struct {
		name   string
		replay func(w http.ResponseWriter, start, limit int)
		reason string
	}{
		{"repeated cursor", func(w http.ResponseWriter, start, limit int) {
			// The previous page again: same projects, same cursor.
			writeJSON(w, 200, buildPage(pageSpec{firstProject: start - limit, projects: limit, hours: 1, metrics: neon.V2Metrics(), cursor: "c" + strconv.Itoa(start)}))
		}, "cursor"},
		{"project repeated across pages", func(w http.ResponseWriter, start, limit int) {
			// New cursor, but the page overlaps the previous one by one project.
			writeJSON(w, 200, buildPage(pageSpec{firstProject: start - 1, projects: limit, hours: 1, metrics: neon.V2Metrics(), cursor: "c" + strconv.Itoa(start+limit)}))
		}, "already seen"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" once", func(t *testing.T) {
			srv := (&pager{total: 250, hours: 1, metrics: neon.V2Metrics(), hook: func(w http.ResponseWriter, r *http.Request, n int64, start, limit int) bool {
				if n == 2 { // the first request for page 2
					tc.replay(w, start, limit)
					return true
				}
				return false
			}}).serve(t)
			c := newClient(t, testConfig(srv.URL))
			pages, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if ids := projectIDs(pages); len(ids) != 250 || ids[100] != projectID(100) {
				t.Fatalf("%d projects after a replayed page", len(ids))
			}
			if st := c.Stats(); st.Retries != 1 || srv.n.Load() != 4 {
				t.Errorf("retries %d, requests %d; want 1 and 4", st.Retries, srv.n.Load())
			}
		})
		t.Run(tc.name+" persists", func(t *testing.T) {
			srv := (&pager{total: 250, hours: 1, metrics: neon.V2Metrics(), hook: func(w http.ResponseWriter, r *http.Request, n int64, start, limit int) bool {
				if start > 0 {
					tc.replay(w, start, limit)
					return true
				}
				return false
			}}).serve(t)
			cfg := testConfig(srv.URL)
			cfg.MaxRetries = 3
			c := newClient(t, cfg)
			pages, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
			if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "page 2") {
				t.Fatalf("got %v, want ErrBadResponse about %s on page 2", err, tc.reason)
			}
			if len(pages) != 1 {
				t.Errorf("%d pages yielded before the error, want 1", len(pages))
			}
			if n := srv.n.Load(); n != 1+4 {
				t.Errorf("%d requests, want 1 + 4 attempts at page 2", n)
			}
		})
	}
}

func TestConsumptionV2_StopsWhenCallerStops(t *testing.T) {
	srv := (&pager{total: 1000, hours: 1, metrics: neon.V2Metrics()}).serve(t)
	c := newClient(t, testConfig(srv.URL))
	for page, err := range c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)) {
		if err != nil || len(page.Projects) != 100 {
			t.Fatal(err)
		}
		break
	}
	if n := srv.n.Load(); n != 1 {
		t.Errorf("%d requests after the caller stopped at page 1", n)
	}
}

// projectList serves GET /projects in pages (cursor = index of the next project).
func projectList(t *testing.T, total int, hook func(w http.ResponseWriter, r *http.Request, n int64) bool) *countingServer {
	return serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if hook != nil && hook(w, r, n) {
			return
		}
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		start, _ := strconv.Atoi(q.Get("cursor"))
		var b strings.Builder
		b.WriteString(`{"projects":[`)
		end := min(start+limit, total)
		for i := start; i < end; i++ {
			if i > start {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":%q,"name":"n","org_id":"org-a","region_id":"aws-us-east-2","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","settings":{"quota":{"compute_time_seconds":%d}}}`, projectID(i), i)
		}
		fmt.Fprintf(&b, `],"unavailable_project_ids":[],"pagination":{"cursor":"%d"}}`, end)
		writeJSON(w, 200, []byte(b.String()))
	})
}

// listOrgA lists org-a's projects from the server at url with a test client; an error fails
// the test.
func listOrgA(t *testing.T, url string) (*neon.Client, []*neon.ProjectsPage) {
	t.Helper()
	c := newClient(t, testConfig(url))
	pages, err := collect(c.ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: "org-a"}))
	if err != nil {
		t.Fatal(err)
	}
	return c, pages
}

func TestListProjects(t *testing.T) {
	srv := projectList(t, 901, nil)
	c, pages := listOrgA(t, srv.URL)
	n := 0
	for _, p := range pages {
		for _, pr := range p.Projects {
			if pr.ID != projectID(n) || pr.Settings.Quota.ComputeTimeSeconds != int64(n) || pr.OrgID != "org-a" {
				t.Fatalf("project %d: %+v", n, pr)
			}
			n++
		}
	}
	if n != 901 || srv.n.Load() != 3 {
		t.Errorf("%d projects in %d requests; want 901 in 3 (limit 400)", n, srv.n.Load())
	}
	if _, err := collect(c.ListProjects(context.Background(), neon.ListProjectsQuery{Limit: 401})); err == nil {
		t.Error("limit 401 accepted")
	}
}

func TestListProjects_IncompletePageRetried(t *testing.T) {
	unavailable := func(w http.ResponseWriter, r *http.Request, n int64) bool {
		writeJSON(w, 200, []byte(`{"projects":[{"id":"proj-00000000"}],"unavailable_project_ids":["proj-00000001"]}`))
		return true
	}
	srv := projectList(t, 10, func(w http.ResponseWriter, r *http.Request, n int64) bool {
		return n == 1 && unavailable(w, r, n)
	})
	c := newClient(t, testConfig(srv.URL))
	pages, err := collect(c.ListProjects(context.Background(), neon.ListProjectsQuery{}))
	if err != nil || len(pages) != 1 || len(pages[0].Projects) != 10 {
		t.Fatalf("got %d pages, %v", len(pages), err)
	}
	if c.Stats().Retries != 1 {
		t.Errorf("retries %d", c.Stats().Retries)
	}

	srv = projectList(t, 10, unavailable)
	cfg := testConfig(srv.URL)
	cfg.MaxRetries = 2
	_, err = collect(newClient(t, cfg).ListProjects(context.Background(), neon.ListProjectsQuery{}))
	if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), "unavailable") || srv.n.Load() != 3 {
		t.Fatalf("got %v after %d requests", err, srv.n.Load())
	}
}

// TestListProjects_ReplayedPageRetried: the project list follows the same replay rule as
// consumption (one pagination implementation): a page repeating the first is retried.
func TestListProjects_ReplayedPageRetried(t *testing.T) {
	srv := projectList(t, 901, func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 2 { // the first request for page 2 gets page 1 again
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "cursor=400", "cursor=0", 1)
		}
		return false
	})
	c, pages := listOrgA(t, srv.URL)
	n := 0
	for _, p := range pages {
		n += len(p.Projects)
	}
	if n != 901 || c.Stats().Retries != 1 || srv.n.Load() != 4 {
		t.Fatalf("%d projects, %d retries, %d requests; want 901, 1, 4", n, c.Stats().Retries, srv.n.Load())
	}
}
