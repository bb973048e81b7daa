package neon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// TestClient_HostileBodiesStayWithinTheLimit measures what hostile answers cost: the 256 MiB
// limit used to cost up to 1 GB, since the buffer doubled past it and a claimed Content-Length
// was allocated up front. Now an endless body of unknown length costs at most twice the limit in
// allocations (buffers of limit/2^k, the last exactly the limit) and fails without a retry; a
// claim above the limit fails before reading; an honest body costs its size once.
func TestClient_HostileBodiesStayWithinTheLimit(t *testing.T) {
	const limit = 4 << 20
	chunk := []byte(`{"projects":[` + strings.Repeat(" ", 64<<10))
	endless := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		for range 4 * limit / len(chunk) { // unknown length: chunked, four times the limit
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	claims := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Length", strconv.Itoa(200<<20))
		w.WriteHeader(200)
		_, _ = w.Write(chunk) // then hangs up: the claim was a lie
	})
	honest := buildPage(pageSpec{projects: 100, hours: 48, metrics: neon.V2Metrics()})
	if len(honest) > limit {
		t.Fatalf("honest page of %d bytes exceeds the test limit", len(honest))
	}
	fine := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Length", strconv.Itoa(len(honest)))
		writeJSON(w, 200, honest)
	})

	for _, tc := range []struct {
		name     string
		srv      *countingServer
		maxAlloc uint64
		wantErr  string
	}{
		{"endless body", endless, 2*limit + 1<<20, "more than the 4194304-byte limit"},
		{"claimed 200 MiB", claims, 1 << 20, "209715200 bytes announced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.srv.URL)
			cfg.MaxResponseBytes = limit
			c := newClient(t, cfg)
			var err error
			got := neon.AllocatedForTest(func() { _, err = collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 48))) })
			if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "NEONMETER_NEON_MAX_RESPONSE_MB") {
				t.Fatalf("error %v, want a bad response saying %q and naming the setting", err, tc.wantErr)
			}
			if n := tc.srv.n.Load(); n != 1 {
				t.Errorf("%d requests: a body over the limit must not be retried", n)
			}
			if got > tc.maxAlloc {
				t.Errorf("reading the answer allocated %d bytes, more than %d (limit %d)", got, tc.maxAlloc, limit)
			}
			t.Logf("%s: %d bytes allocated for a %d-byte limit", tc.name, got, limit)
		})
	}
	t.Run("honest page", func(t *testing.T) {
		cfg := testConfig(fine.URL)
		cfg.MaxResponseBytes = limit
		c := newClient(t, cfg)
		var pages []*neon.ConsumptionPage
		var err error
		// Body, decoded values and HTTP overhead: well below twice the body.
		got := neon.AllocatedForTest(func() { pages, err = collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 48))) })
		if err != nil || len(pages) != 1 || len(pages[0].Projects) != 100 {
			t.Fatalf("honest page: %d pages, %v", len(pages), err)
		}
		if got > uint64(len(honest))*3 {
			t.Errorf("an honest %d-byte page allocated %d bytes", len(honest), got)
		}
	})
}

// TestDecode_RejectsUnboundedLabels: period_id and period_plan are copied onto every stored row,
// and a cursor into every next request; a 1 MB plan string made a 1 MB answer cost 767 MB. Each is
// now bounded in length and alphabet, and a violation names the project and field.
func TestDecode_RejectsUnboundedLabels(t *testing.T) {
	q := hourlyQuery("org-a", 2)
	good := string(buildPage(pageSpec{projects: 2, hours: 2, metrics: neon.V2Metrics(), cursor: "c2"}))
	if _, err := neon.DecodeConsumptionForTest([]byte(good), q, false); err != nil {
		t.Fatalf("the unmodified page: %v", err)
	}
	huge := strings.Repeat("x", 1<<20)
	cases := []struct {
		name, old, new, want string
	}{
		{"1 MB plan", `"period_plan":"scale"`, `"period_plan":"` + huge + `"`, "period_plan"},
		{"65-byte plan", `"period_plan":"scale"`, `"period_plan":"` + strings.Repeat("p", 65) + `"`, "longer than 64 bytes"},
		{"plan with a newline", `"period_plan":"scale"`, `"period_plan":"sc\nale"`, "period_plan"},
		{"plan with a quote", `"period_plan":"scale"`, `"period_plan":"sc\"ale"`, "period_plan"},
		{"period id of 1 MB", `"period_id":"6f1c2d3e`, `"period_id":"` + huge, "period_id"},
		{"period id with a slash", `"period_id":"6f1c2d3e`, `"period_id":"6f1c/2d3e`, "period_id"},
		{"cursor of 4 kB", `"cursor":"c2"`, `"cursor":"` + strings.Repeat("c", 4096) + `"`, "cursor"},
		{"cursor with a space", `"cursor":"c2"`, `"cursor":"c 2"`, "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(strings.Replace(good, tc.old, tc.new, 1))
			if string(body) == good {
				t.Fatalf("the case changed nothing")
			}
			var err error
			got := neon.AllocatedForTest(func() { _, err = neon.DecodeConsumptionForTest(body, q, false) })
			var de *neon.DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a DecodeError about %s", err, tc.want)
			}
			if tc.want != "cursor" && de.Project != "proj-00000000" {
				t.Errorf("error names project %q, want proj-00000000", de.Project)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes quotes too much of the body", len(err.Error()))
			}
			// The decoder's slabs are sized by the body (~740 kB here); a copy of the text would
			// add its megabyte.
			if got > uint64(len(huge)) {
				t.Errorf("decoding allocated %d bytes: the oversized text was copied", got)
			}
		})
	}
	for _, plan := range []string{"free_v3", "launch", "Scale 2024", "enterprise.custom-1"} {
		body := strings.Replace(good, `"period_plan":"scale"`, `"period_plan":"`+plan+`"`, 1)
		if p, err := neon.DecodeConsumptionForTest([]byte(body), q, false); err != nil || p.Projects[0].Periods[0].Plan != plan {
			t.Errorf("plan %q refused: %v", plan, err)
		}
	}
}

// TestConsumptionV2_EndlessCursorStops: a server that always answers a full page of new
// projects with a fresh cursor used to be followed for 100,000 pages (~55 h at the default
// rate); MaxPages ends it with ErrBadResponse after exactly that many requests.
func TestConsumptionV2_EndlessCursorStops(t *testing.T) {
	srv := (&pager{total: 1 << 30, hours: 1, metrics: []string{neon.MetricComputeUnitSeconds}}).serve(t)
	c := newClient(t, testConfig(srv.URL))
	q := hourlyQuery("org-a", 1)
	q.MaxPages = 25
	pages, err := collect(c.ConsumptionV2(context.Background(), q))
	if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), "more than 25 pages") {
		t.Fatalf("after %d pages: %v, want ErrBadResponse naming the page cap", len(pages), err)
	}
	if n := srv.n.Load(); n != 25 {
		t.Errorf("%d requests, want 25", n)
	}
	if neon.DefaultMaxPages > 10_000 {
		t.Errorf("DefaultMaxPages %d: an endless cursor at 30 requests a minute would run for %s", neon.DefaultMaxPages,
			time.Duration(neon.DefaultMaxPages)*2*time.Second)
	}
	q.MaxPages = -1
	if _, err := collect(c.ConsumptionV2(context.Background(), q)); err == nil || !strings.Contains(err.Error(), "MaxPages") {
		t.Errorf("negative MaxPages: %v", err)
	}
}

// TestListProjects_RejectsBadOrgID: the org id of a listed project is an identifier like any
// other, bounded in length and alphabet.
func TestListProjects_RejectsBadOrgID(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeJSON(w, 200, []byte(fmt.Sprintf(`{"projects":[{"id":"proj-1","org_id":%q}]}`, strings.Repeat("O", 100))))
	})
	cfg := testConfig(srv.URL)
	cfg.MaxRetries = -1
	_, err := collect(newClient(t, cfg).ListProjects(context.Background(), neon.ListProjectsQuery{}))
	if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), "org_id") {
		t.Fatalf("got %v, want a bad response naming org_id", err)
	}
}

// A project list answering with a megabyte name or a region id outside the id alphabet is a bad
// answer naming the field, not text copied into logs and rows.
func TestListProjects_RejectsUnboundedNameAndRegion(t *testing.T) {
	for field, project := range map[string]string{
		"name":      fmt.Sprintf(`{"id":"proj-1","name":%q}`, strings.Repeat("n", 1<<20)),
		"region_id": `{"id":"proj-1","region_id":"aws us-east-2; DROP"}`,
	} {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			writeJSON(w, 200, []byte(`{"projects":[`+project+`]}`))
		})
		cfg := testConfig(srv.URL)
		cfg.MaxRetries = -1
		_, err := collect(newClient(t, cfg).ListProjects(context.Background(), neon.ListProjectsQuery{}))
		if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: got %v, want a bad response naming %s", field, err, field)
		}
	}
}
