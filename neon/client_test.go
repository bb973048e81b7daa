package neon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/neon"
)

func TestNewClient_Validation(t *testing.T) {
	ok := testConfig("https://console.neon.tech/api/v2")
	cases := []struct {
		field string
		mod   func(*neon.Config)
	}{
		{"BaseURL", func(c *neon.Config) { c.BaseURL = "" }},
		{"BaseURL", func(c *neon.Config) { c.BaseURL = "console.neon.tech/api/v2" }},
		{"BaseURL", func(c *neon.Config) { c.BaseURL = "ftp://console.neon.tech" }},
		{"BaseURL", func(c *neon.Config) { c.BaseURL = "https://x/api/v2?a=b" }},
		{"APIKey", func(c *neon.Config) { c.APIKey = "" }},
		{"APIKey", func(c *neon.Config) { c.APIKey = "ab\ncd" }},
		{"RequestTimeout", func(c *neon.Config) { c.RequestTimeout = -time.Second }},
		{"MinBackoff", func(c *neon.Config) { c.MinBackoff = -1 }},
		{"MaxBackoff", func(c *neon.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }},
		{"ConsumptionRatePerMin", func(c *neon.Config) { c.ConsumptionRatePerMin = -1 }},
		{"GeneralRatePerMin", func(c *neon.Config) { c.GeneralRatePerMin = -5 }},
		{"ConsumptionBurst", func(c *neon.Config) { c.ConsumptionBurst = -1 }},
		{"GeneralBurst", func(c *neon.Config) { c.GeneralBurst = -1 }},
		{"OperationTimeout", func(c *neon.Config) { c.OperationTimeout = -1 }},
	}
	for _, tc := range cases {
		cfg := ok
		tc.mod(&cfg)
		_, err := neon.NewClient(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming the field", tc.field, err)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error leaks the key", tc.field)
		}
	}
	if _, err := neon.NewClient(neon.Config{BaseURL: "https://console.neon.tech/api/v2", APIKey: "k"}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// Two clients may share a registry.
	reg := prometheus.NewRegistry()
	for range 2 {
		cfg := ok
		cfg.Registerer = reg
		if _, err := neon.NewClient(cfg); err != nil {
			t.Fatalf("second client on one registry: %v", err)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestConsumptionV2_RequestShape(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []*http.Request
	)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		reqs = append(reqs, r)
		mu.Unlock()
		if n == 1 {
			generalError(w, r, 503, "", "try again")
			return
		}
		writeJSON(w, 200, buildPage(pageSpec{projects: 1, hours: 3, metrics: []string{neon.MetricComputeUnitSeconds, neon.MetricExtraBranchesMonth}}))
	})
	c := newClient(t, testConfig(srv.URL+"/api/v2/"))
	q := hourlyQuery("org-a", 3)
	q.Metrics = []string{neon.MetricComputeUnitSeconds, neon.MetricExtraBranchesMonth}
	q.ProjectIDs = []string{projectID(0)}
	q.Limit = 7
	q.From, q.To = q.From.In(time.FixedZone("X", 3600)), q.To.In(time.FixedZone("Y", -7200))
	if _, err := collect(c.ConsumptionV2(context.Background(), q)); err != nil {
		t.Fatal(err)
	}
	snapshot := func() []*http.Request { mu.Lock(); defer mu.Unlock(); return slices.Clone(reqs) }
	got := snapshot()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 (one 503 retry)", len(got))
	}
	if got[0].Header.Get("X-Request-ID") == got[1].Header.Get("X-Request-ID") {
		t.Error("attempts share an X-Request-ID")
	}
	for _, r := range got {
		if r.URL.Path != "/api/v2/consumption_history/v2/projects" {
			t.Errorf("path %q", r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
			t.Errorf("Authorization %q", got)
		}
		if id := r.Header.Get("X-Request-ID"); !uuidRE.MatchString(id) {
			t.Errorf("X-Request-ID %q is not a UUIDv4", id)
		}
		v := r.URL.Query()
		want := map[string][]string{
			"from": {"2026-05-10T00:00:00Z"}, "to": {"2026-05-10T03:00:00Z"}, "granularity": {"hourly"},
			"org_id": {"org-a"}, "metrics": {"compute_unit_seconds", "extra_branches_month"},
			"project_ids": {projectID(0)}, "limit": {"7"},
		}
		for k, w := range want {
			if !slices.Equal(v[k], w) {
				t.Errorf("query %s = %q, want %q", k, v[k], w)
			}
		}
		if len(v) != len(want) {
			t.Errorf("query %v has extra parameters", v)
		}
	}
	// Default metrics: all eight.
	mu.Lock()
	reqs = nil
	mu.Unlock()
	// The page carries only two metrics, both among the eight.
	if _, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 3))); err != nil {
		t.Fatal(err)
	}
	got = snapshot()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	if m := got[0].URL.Query()["metrics"]; !slices.Equal(m, neon.V2Metrics()) || got[0].URL.Query().Get("limit") != "100" {
		t.Errorf("default metrics %q, limit %q", m, got[0].URL.Query().Get("limit"))
	}
}

func TestConsumptionQuery_RejectedBeforeAnyRequest(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeJSON(w, 200, []byte(`{"projects":[]}`)) })
	c := newClient(t, testConfig(srv.URL))
	base := hourlyQuery("org-a", 24)
	cases := []struct {
		name, want string
		mod        func(*neon.ConsumptionQuery)
		legacy     bool
	}{
		{"no org", "OrgID", func(q *neon.ConsumptionQuery) { q.OrgID = "" }, false},
		{"bad org", "OrgID", func(q *neon.ConsumptionQuery) { q.OrgID = "Org_A" }, false},
		{"from = to", "not before", func(q *neon.ConsumptionQuery) { q.To = q.From }, false},
		{"from > to", "not before", func(q *neon.ConsumptionQuery) { q.From, q.To = q.To, q.From }, false},
		{"zero from", "required", func(q *neon.ConsumptionQuery) { q.From = time.Time{} }, false},
		{"before 2024-03", "2024-03-01", func(q *neon.ConsumptionQuery) {
			q.From = time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC)
			q.To = q.From.Add(time.Hour)
		}, false},
		{"unaligned from", "bucket edge", func(q *neon.ConsumptionQuery) { q.From = q.From.Add(time.Minute) }, false},
		{"unaligned to", "bucket edge", func(q *neon.ConsumptionQuery) { q.To = q.To.Add(time.Nanosecond) }, false},
		{"daily unaligned", "bucket edge", func(q *neon.ConsumptionQuery) {
			q.Granularity = neon.GranularityDaily
			q.From = q.From.Add(time.Hour)
		}, false},
		{"monthly unaligned", "bucket edge", func(q *neon.ConsumptionQuery) { q.Granularity = neon.GranularityMonthly }, false},
		{"hourly window", "lookback", func(q *neon.ConsumptionQuery) { q.To = q.From.Add(169 * time.Hour) }, false},
		{"daily window", "lookback", func(q *neon.ConsumptionQuery) {
			q.Granularity = neon.GranularityDaily
			q.To = q.From.AddDate(0, 0, 61)
		}, false},
		{"monthly window", "lookback", func(q *neon.ConsumptionQuery) {
			q.Granularity = neon.GranularityMonthly
			q.From = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			q.To = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		}, false},
		{"granularity", "Granularity", func(q *neon.ConsumptionQuery) { q.Granularity = "weekly" }, false},
		{"limit high", "Limit", func(q *neon.ConsumptionQuery) { q.Limit = 101 }, false},
		{"limit negative", "Limit", func(q *neon.ConsumptionQuery) { q.Limit = -1 }, false},
		{"unknown metric", "metric", func(q *neon.ConsumptionQuery) { q.Metrics = []string{"cpu_seconds"} }, false},
		{"legacy metric on v2", "metric", func(q *neon.ConsumptionQuery) { q.Metrics = []string{neon.MetricActiveTimeSeconds} }, false},
		{"v2 metric on legacy", "metric", func(q *neon.ConsumptionQuery) { q.Metrics = []string{neon.MetricComputeUnitSeconds} }, true},
		{"metric twice", "twice", func(q *neon.ConsumptionQuery) {
			q.Metrics = []string{neon.MetricComputeUnitSeconds, neon.MetricComputeUnitSeconds}
		}, false},
		{"project ids", "ProjectIDs", func(q *neon.ConsumptionQuery) { q.ProjectIDs = []string{"a/b"} }, false},
		{"too many ids", "ProjectIDs", func(q *neon.ConsumptionQuery) {
			for i := range 101 {
				q.ProjectIDs = append(q.ProjectIDs, projectID(i))
			}
		}, false},
	}
	for _, tc := range cases {
		q := base
		tc.mod(&q)
		seq := c.ConsumptionV2(context.Background(), q)
		if tc.legacy {
			seq = c.ConsumptionLegacy(context.Background(), q)
		}
		pages, err := collect(seq)
		if err == nil || !strings.Contains(err.Error(), tc.want) || len(pages) != 0 {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if n := srv.n.Load(); n != 0 {
		t.Fatalf("%d requests sent for invalid queries", n)
	}
	// The legacy route takes no org; valid bounds at each granularity pass.
	okQueries := []neon.ConsumptionQuery{
		{From: testFrom, To: testFrom.Add(168 * time.Hour), Granularity: neon.GranularityHourly},
		{From: testFrom, To: testFrom.AddDate(0, 0, 60), Granularity: neon.GranularityDaily},
		{From: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Granularity: neon.GranularityMonthly},
	}
	for _, q := range okQueries {
		if _, err := collect(c.ConsumptionLegacy(context.Background(), q)); err != nil {
			t.Errorf("%s: %v", q.Granularity, err)
		}
	}
}

func TestClient_RetriesGETOnTransientFailures(t *testing.T) {
	statuses := []int{429, 503, 500, 423, 502}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if int(n) <= len(statuses) {
			if n == 1 {
				w.Header().Set("Retry-After", "0")
			}
			generalError(w, r, statuses[n-1], "", "transient")
			return
		}
		writeJSON(w, 200, []byte(`{"project":{"id":"proj-1","org_id":"org-a","active_time_seconds":5,"compute_time_seconds":4,"written_data_bytes":3,"data_transfer_bytes":2,"data_storage_bytes_hour":1,"consumption_period_start":"2026-05-01T00:00:00Z","consumption_period_end":"2026-06-01T00:00:00Z","settings":{"quota":{"active_time_seconds":100}},"default_endpoint_settings":{"autoscaling_limit_min_cu":0.25,"autoscaling_limit_max_cu":2,"suspend_timeout_seconds":300},"owner":{"subscription_type":"scale_v3","email":"x@y.z","name":"x","branches_limit":10}}}`))
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv.URL)
	cfg.Registerer = reg
	c := newClient(t, cfg)
	p, err := c.GetProject(context.Background(), "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	want := neon.Counters{ActiveTimeSeconds: 5, ComputeTimeSeconds: 4, WrittenDataBytes: 3, DataTransferBytes: 2, DataStorageBytesHour: 1}
	if p.Counters != want || p.Settings.Quota.ActiveTimeSeconds != 100 || p.SubscriptionType != "scale_v3" ||
		p.DefaultEndpointSettings.AutoscalingLimitMaxCU != 2 || p.OrgID != "org-a" ||
		!p.ConsumptionPeriodEnd.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("project decoded as %+v", p)
	}
	st := c.Stats()
	if st.Requests != 6 || st.Retries != 5 || st.RateLimited != 1 {
		t.Errorf("stats %+v, want 6 requests, 5 retries, 1 rate limited", st)
	}
	for reason, want := range map[string]float64{"429": 1, "503": 1, "5xx": 2, "423": 1} {
		got := metrictest.Value(t, reg, "neonmeter_neon_api_retries_total", map[string]string{"route": "GET /projects/{project_id}", "reason": reason})
		if got != want {
			t.Errorf("retries{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := metrictest.Value(t, reg, "neonmeter_neon_api_requests_total", map[string]string{"route": "GET /projects/{project_id}", "code": "200"}); got != 1 {
		t.Errorf("requests{code=200} = %v", got)
	}
}

func TestClient_RetriesExhausted(t *testing.T) {
	var ids syncList
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		ids.add(r.Header.Get("X-Request-ID"))
		generalError(w, r, 429, "TOO_MANY_REQUESTS", "slow down")
	})
	cfg := testConfig(srv.URL)
	cfg.MaxRetries = 3
	c := newClient(t, cfg)
	_, err := c.GetProject(context.Background(), "proj-1")
	lastID := ids.last()
	if !errors.Is(err, neon.ErrRateLimited) {
		t.Fatalf("got %v, want ErrRateLimited", err)
	}
	var ae *neon.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%v is not an *APIError", err)
	}
	if ae.Status != 429 || ae.Route != "/projects/{project_id}" || ae.Method != "GET" || ae.Code != "TOO_MANY_REQUESTS" || ae.Message != "slow down" || ae.RequestID != lastID {
		t.Errorf("APIError %+v (last request id %s)", ae, lastID)
	}
	mentions(t, err, "/projects/{project_id}", "429", "TOO_MANY_REQUESTS", "slow down", lastID)
	if n := srv.n.Load(); n != 4 {
		t.Errorf("%d attempts, want 1 + 3 retries", n)
	}
}

func TestClient_FinalStatuses(t *testing.T) {
	cases := []struct {
		status int
		call   func(*neon.Client) error
		want   error
	}{
		{404, func(c *neon.Client) error { _, err := c.GetProject(context.Background(), "proj-1"); return err }, neon.ErrNotFound},
		{403, func(c *neon.Client) error {
			_, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
			return err
		}, neon.ErrNoConsumptionHistory},
		{403, func(c *neon.Client) error {
			_, err := collect(c.ConsumptionLegacy(context.Background(), hourlyQuery("org-a", 1)))
			return err
		}, neon.ErrNoConsumptionHistory},
		{406, func(c *neon.Client) error {
			_, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
			return err
		}, neon.ErrWindow},
		{400, func(c *neon.Client) error { _, err := c.ListEndpoints(context.Background(), "proj-1"); return err }, nil},
		{401, func(c *neon.Client) error {
			_, err := collect(c.ListProjects(context.Background(), neon.ListProjectsQuery{}))
			return err
		}, nil},
		// A mutation is not retried on 500 or 429: only 423 and 503 are safe.
		{500, func(c *neon.Client) error {
			_, _, err := c.SuspendEndpoint(context.Background(), "proj-1", "ep-1")
			return err
		}, nil},
		{429, func(c *neon.Client) error {
			_, _, err := c.UpdateProject(context.Background(), "proj-1", neon.ProjectUpdate{Quota: &neon.Quota{}})
			return err
		}, neon.ErrRateLimited},
	}
	for _, tc := range cases {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { generalError(w, r, tc.status, "", "no") })
		c := newClient(t, testConfig(srv.URL))
		err := tc.call(c)
		var ae *neon.APIError
		if !errors.As(err, &ae) || ae.Status != tc.status {
			t.Errorf("status %d: got %v", tc.status, err)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("status %d: %v does not match %v", tc.status, err, tc.want)
		}
		if tc.status == 403 && errors.Is(err, neon.ErrNotFound) {
			t.Errorf("403 matched ErrNotFound")
		}
		if n := srv.n.Load(); n != 1 {
			t.Errorf("status %d: %d attempts, want 1", tc.status, n)
		}
	}
	// 403 outside the consumption routes is not ErrNoConsumptionHistory.
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { generalError(w, r, 403, "", "forbidden") })
	if _, err := newClient(t, testConfig(srv.URL)).GetProject(context.Background(), "proj-1"); errors.Is(err, neon.ErrNoConsumptionHistory) {
		t.Errorf("403 on /projects/{id} matched ErrNoConsumptionHistory")
	}
}

func TestClient_MutationRetries(t *testing.T) {
	okBody := []byte(`{"endpoint":{"id":"ep-1","project_id":"proj-1","branch_id":"br-1","current_state":"idle","disabled":true,"autoscaling_limit_min_cu":0.25,"autoscaling_limit_max_cu":1,"suspend_timeout_seconds":300},"operations":[{"id":"0b7a7f5e-1111-4222-8333-444455556666","project_id":"proj-1","action":"apply_config","status":"running","failures_count":0,"created_at":"2026-05-10T00:00:00Z","updated_at":"2026-05-10T00:00:00Z","total_duration_ms":0}]}`)
	var sent syncList
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		b, _ := io.ReadAll(r.Body)
		sent.add(r.Method + " " + string(b))
		switch n {
		case 1:
			generalError(w, r, 423, "", "locked")
		case 2:
			generalError(w, r, 503, "", "unavailable")
		default:
			writeJSON(w, 200, okBody)
		}
	})
	c := newClient(t, testConfig(srv.URL))
	disabled := true
	ep, ops, err := c.UpdateEndpoint(context.Background(), "proj-1", "ep-1", neon.EndpointUpdate{Disabled: &disabled})
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Disabled || ep.ID != "ep-1" || len(ops) != 1 || ops[0].Action != "apply_config" || ops[0].Status != neon.OperationRunning {
		t.Errorf("endpoint %+v ops %+v", ep, ops)
	}
	if bodies := sent.all(); len(bodies) != 3 || bodies[2] != `PATCH {"endpoint":{"disabled":true}}` {
		t.Errorf("requests %q", bodies)
	}
	if st := c.Stats(); st.WakeRisk != 3 || st.Retries != 2 {
		t.Errorf("stats %+v, want 3 wake-risk attempts and 2 retries", st)
	}

	// A network error after sending a mutation is final: the change may have happened.
	dead := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	c = newClient(t, testConfig(dead.URL))
	if _, _, err := c.SuspendEndpoint(context.Background(), "proj-1", "ep-1"); err == nil {
		t.Fatal("no error from a dropped connection")
	}
	if hits := dead.n.Load(); hits != 1 {
		t.Errorf("mutation sent %d times after a network error, want 1", hits)
	}
	// The same fault on a GET is retried.
	cfg := testConfig(dead.URL)
	cfg.MaxRetries = 2
	if _, err := newClient(t, cfg).ListEndpoints(context.Background(), "proj-1"); err == nil {
		t.Fatal("no error")
	}
	if hits := dead.n.Load() - 1; hits != 3 {
		t.Errorf("GET sent %d times, want 3", hits)
	}
}

func TestClient_TimeoutIsRetried(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			<-r.Context().Done() // hang until the client gives up on this attempt
			return
		}
		writeJSON(w, 200, []byte(`{"endpoints":[]}`))
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv.URL)
	cfg.RequestTimeout = 50 * time.Millisecond
	cfg.Registerer = reg
	c := newClient(t, cfg)
	eps, err := c.ListEndpoints(context.Background(), "proj-1")
	if err != nil || len(eps) != 0 {
		t.Fatalf("got %v, %v", eps, err)
	}
	if got := metrictest.Value(t, reg, "neonmeter_neon_api_retries_total", map[string]string{"route": "GET /projects/{project_id}/endpoints", "reason": "timeout"}); got != 1 {
		t.Errorf("timeout retries = %v", got)
	}
}

func TestClient_ContextEndsWaits(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { generalError(w, r, 503, "", "down") })
	cfg := testConfig(srv.URL)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	c := newClient(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.n.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := c.GetProject(ctx, "proj-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled while backing off", err)
	}

	// A rate-limiter wait ends with the context too.
	cfg = testConfig(srv.URL)
	cfg.GeneralRatePerMin, cfg.GeneralBurst = 0.001, 1
	c = newClient(t, cfg)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _ = c.ListEndpoints(ctx, "proj-1") // takes the only token
	if _, err := c.ListEndpoints(ctx, "proj-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded while throttled", err)
	}
}

func TestClient_ThrottlesPerBucket(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if strings.Contains(r.URL.Path, "consumption") {
			writeJSON(w, 200, []byte(`{"projects":[]}`))
			return
		}
		writeJSON(w, 200, []byte(`{"endpoints":[]}`))
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv.URL)
	cfg.ConsumptionRatePerMin, cfg.ConsumptionBurst = 3000, 1 // one token per 20 ms
	cfg.Registerer = reg
	c := newClient(t, cfg)
	for range 3 {
		if _, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1))); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := c.ListEndpoints(context.Background(), "proj-1"); err != nil {
			t.Fatal(err)
		}
	}
	// The consumption bucket held one token: two calls waited; the general bucket never did.
	if st := c.Stats(); st.Throttled != 2 {
		t.Errorf("throttled %d, want 2", st.Throttled)
	}
	if v := metrictest.Value(t, reg, "neonmeter_neon_api_throttle_wait_seconds_total", map[string]string{"bucket": "consumption"}); v <= 0 {
		t.Errorf("consumption throttle wait %v", v)
	}
	if v := metrictest.Value(t, reg, "neonmeter_neon_api_throttle_wait_seconds_total", map[string]string{"bucket": "general"}); v != 0 {
		t.Errorf("general throttle wait %v", v)
	}
}

func TestClient_KeyNeverLeaks(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		auth := r.Header.Get("Authorization")
		switch {
		case strings.HasPrefix(r.URL.Path, "/projects/proj-1/endpoints"):
			// A server echoing the credential in an error message.
			generalError(w, r, 400, auth, "bad header "+auth)
		case strings.Contains(r.URL.Path, "consumption"):
			// ... and inside a body: an unknown metric named after it.
			writeJSON(w, 200, []byte(`{"projects":[{"project_id":"proj-1","periods":[{"period_id":"p","period_plan":"scale","period_start":"2026-05-01T00:00:00Z","consumption":[{"timeframe_start":"2026-05-10T00:00:00Z","timeframe_end":"2026-05-10T01:00:00Z","metrics":[{"metric_name":"`+testKey+`","value":1}]}]}]}]}`))
		default:
			w.Header().Set("Retry-After", "0")
			generalError(w, r, 429, "", auth)
		}
	})
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv.URL)
	cfg.Registerer = reg
	cfg.MaxRetries = 2
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, cfg)
	var errs []error
	_, err := c.ListEndpoints(context.Background(), "proj-1")
	errs = append(errs, err)
	_, err = collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
	errs = append(errs, err)
	_, err = c.GetProject(context.Background(), "proj-1")
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d: no error", i)
		}
		if strings.Contains(err.Error(), testKey) || strings.Contains(fmt.Sprintf("%+v", err), testKey) {
			t.Errorf("call %d: error leaks the key: %v", i, err)
		}
		var ae *neon.APIError
		if errors.As(err, &ae) && (strings.Contains(ae.Message, testKey) || strings.Contains(ae.Code, testKey)) {
			t.Errorf("call %d: APIError fields leak the key", i)
		}
		var de *neon.DecodeError
		if errors.As(err, &de) && strings.Contains(de.Metric+de.Reason, testKey) {
			t.Errorf("call %d: DecodeError fields leak the key", i)
		}
	}
	if !errors.Is(errs[1], neon.ErrBadResponse) || !errors.Is(errs[2], neon.ErrRateLimited) {
		t.Errorf("sentinels lost by redaction: %v / %v", errs[1], errs[2])
	}
	if logs.Len() == 0 {
		t.Error("no debug log written, so the check below proves nothing")
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("logs leak the key:\n%s", logs.String())
	}
	var metrics strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		metrics.WriteString(mf.String())
	}
	if metrics.Len() == 0 || strings.Contains(metrics.String(), testKey) {
		t.Errorf("metrics empty or leaking the key")
	}
}

func TestClient_NetworkErrorNamesNoKey(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := testConfig("http://" + addr + "/api/v2")
	cfg.MaxRetries = 1
	_, err = newClient(t, cfg).GetProject(context.Background(), "proj-1")
	if err == nil || strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "request_id") {
		t.Fatalf("got %v", err)
	}
}
