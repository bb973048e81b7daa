package sim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon/sim"
)

// t0 is the test clock's start: mid-hour, late in a month, so windows cross month boundaries.
var t0 = time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)

// api talks to a simulator over real HTTP.
type api struct {
	t   testing.TB
	srv *httptest.Server
	key string
}

func newAPI(t testing.TB, h http.Handler, key string) *api {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv, key: key}
}

// do sends a request and returns status, headers and body.
func (a *api) do(method, path string, body any) (int, http.Header, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// get expects 200 and decodes the body into out (if non-nil).
func (a *api) get(path string, out any) []byte {
	a.t.Helper()
	status, _, body := a.do(http.MethodGet, path, nil)
	if status != http.StatusOK {
		a.t.Fatalf("GET %s: status %d: %s", path, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			a.t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return body
}

// status returns only the status of a request.
func (a *api) status(method, path string, body any) int {
	a.t.Helper()
	s, _, _ := a.do(method, path, body)
	return s
}

// v2Page is the page as tests read it.
type v2Page = sim.V2Page

type legacyPage struct {
	Projects []struct {
		ProjectID string `json:"project_id"`
		Periods   []struct {
			PeriodPlan  string           `json:"period_plan"`
			PeriodStart time.Time        `json:"period_start"`
			Consumption []map[string]any `json:"consumption"`
		} `json:"periods"`
	} `json:"projects"`
	Pagination *struct {
		Cursor string `json:"cursor"`
	} `json:"pagination"`
}

// cell identifies one reported value.
type cell struct {
	project, metric string
	start           time.Time
}

// values flattens a v2 page into cells, failing on duplicates.
func pageValues(t testing.TB, p *v2Page) map[cell]int64 {
	t.Helper()
	out := map[cell]int64{}
	for _, pr := range p.Projects {
		for _, per := range pr.Periods {
			for _, tf := range per.Consumption {
				for _, m := range tf.Metrics {
					c := cell{pr.ProjectID, m.Name, tf.Start}
					if _, dup := out[c]; dup {
						t.Fatalf("duplicate value for %+v", c)
					}
					out[c] = m.Value
				}
			}
		}
	}
	return out
}

// consumptionURL builds a consumption query.
func consumptionURL(legacy bool, org string, from, to time.Time, gran string, metrics []string, limit int, cursor string) string {
	q := url.Values{}
	q.Set("from", from.UTC().Format(time.RFC3339))
	q.Set("to", to.UTC().Format(time.RFC3339))
	q.Set("granularity", gran)
	if org != "" {
		q.Set("org_id", org)
	}
	for _, m := range metrics {
		q.Add("metrics", m)
	}
	if limit > 0 {
		q.Set("limit", itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/api/v2/consumption_history/v2/projects?"
	if legacy {
		path = "/api/v2/consumption_history/projects?"
	}
	return path + q.Encode()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// allV2 reads every page of a v2 query and returns the projects in order and all values.
func (a *api) allV2(org string, from, to time.Time, gran string, metrics []string, limit int) ([]string, map[cell]int64) {
	a.t.Helper()
	var ids []string
	vals := map[cell]int64{}
	cursor := ""
	for range 10000 {
		var pg v2Page
		a.get(consumptionURL(false, org, from, to, gran, metrics, limit, cursor), &pg)
		for _, p := range pg.Projects {
			ids = append(ids, p.ProjectID)
		}
		for c, v := range pageValues(a.t, &pg) {
			if _, dup := vals[c]; dup {
				a.t.Fatalf("value %+v on two pages", c)
			}
			vals[c] = v
		}
		if pg.Pagination == nil || len(pg.Projects) < limit {
			return ids, vals
		}
		cursor = pg.Pagination.Cursor
	}
	a.t.Fatal("pagination does not end")
	return nil, nil
}

var v2Metrics = []string{"compute_unit_seconds", "root_branch_bytes_month", "child_branch_bytes_month",
	"instant_restore_bytes_month", "public_network_transfer_bytes", "private_network_transfer_bytes",
	"extra_branches_month", "snapshot_storage_bytes_month"}

var legacyMetrics = []string{"active_time_seconds", "compute_time_seconds", "written_data_bytes",
	"synthetic_storage_size_bytes", "data_storage_bytes_hour", "logical_size_bytes", "logical_size_bytes_hour"}

func orgByPlan(t testing.TB, s *sim.Sim, plan string) sim.Org {
	t.Helper()
	for _, o := range s.Orgs() {
		if o.Plan == plan {
			return o
		}
	}
	t.Fatalf("no org with plan %s", plan)
	return sim.Org{}
}

func newSim(t testing.TB, cfg sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonUnmarshal(b []byte, out any) error { return json.Unmarshal(b, out) }
