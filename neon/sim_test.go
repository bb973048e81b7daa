package neon_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/spectest"
	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// simNow is the simulator's fixed clock: a non-round instant, so the last complete hour is
// 10:00 and the buckets before it are final.
var simNow = time.Date(2026, 5, 20, 10, 17, 23, 0, time.UTC)

// simServer serves a simulator through the spec Recorder: every request the client sends and
// every response it reads is validated against Neon's spec (deliberately corrupted bodies
// excepted), and the test fails on any violation.
func simServer(t testing.TB, cfg sim.Config) (*sim.Sim, *spectest.Recorder, string) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := spectest.Load(t).NewRecorder(s.Handler())
	rec.SkipResponse = func(r *http.Request, status int, body []byte) bool { return sim.InjectedFault(status, body) }
	srv := httptest.NewServer(rec)
	t.Cleanup(func() {
		srv.Close()
		rec.Check(t)
	})
	return s, rec, srv.URL + "/api/v2"
}

func orgByPlan(t testing.TB, s *sim.Sim, plan string, legacy bool) sim.Org {
	t.Helper()
	for _, o := range s.Orgs() {
		if o.Legacy == legacy && (legacy || o.Plan == plan) {
			return o
		}
	}
	t.Fatalf("no org with plan %s (legacy %v)", plan, legacy)
	return sim.Org{}
}

// TestSim_FullReadUnderFaults reads every org's project list and 72 hours of hourly usage of
// the launch, scale (v2) and legacy orgs from a simulator failing a quarter of its answers,
// and checks the result value by value against the simulator's ground truth.
func TestSim_FullReadUnderFaults(t *testing.T) {
	s, _, base := simServer(t, sim.Config{Projects: 660, Seed: 7, Now: testclock.New(simNow).Now})
	s.SetFaults(sim.Faults{
		Rate429: 0.07, Rate500: 0.07, Rate503: 0.06, // 20 % 429/5xx
		MalformedRate: 0.02, TruncatedRate: 0.01, RepeatPageRate: 0.03, UnavailableRate: 0.03,
		Seed: 11,
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(base)
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 10*time.Millisecond
	cfg.Registerer = reg
	c := newClient(t, cfg)
	ctx := context.Background()

	listAll := func() {
		t.Helper()
		for _, org := range s.Orgs() {
			pages, err := collect(c.ListProjects(ctx, neon.ListProjectsQuery{OrgID: org.ID, Limit: 7}))
			if err != nil {
				t.Fatalf("list projects of %s: %v", org.ID, err)
			}
			var ids []string
			for _, p := range pages {
				for _, pr := range p.Projects {
					ids = append(ids, pr.ID)
					if pr.OrgID != org.ID {
						t.Errorf("project %s listed with org %s under %s", pr.ID, pr.OrgID, org.ID)
					}
				}
			}
			if !slices.Equal(ids, org.ProjectIDs) {
				t.Fatalf("org %s: listed %d projects, simulator has %d (or order differs)", org.ID, len(ids), len(org.ProjectIDs))
			}
		}
	}
	listAll()

	to := simNow.Truncate(time.Hour)
	from := to.Add(-72 * time.Hour)
	launch, scale, legacy := orgByPlan(t, s, "launch", false), orgByPlan(t, s, "scale", false), orgByPlan(t, s, "", true)
	passes := []struct {
		org    sim.Org
		legacy bool
		from   time.Time
		limit  int
	}{
		// The brief's passes: 72 h, 100 projects a page.
		{launch, false, from, 100}, {scale, false, from, 100}, {legacy, true, from, 100},
		// Many small pages, so the rarer faults (malformed, truncated, replayed) hit consumption
		// pages too; a short window keeps them cheap.
		{launch, false, to.Add(-6 * time.Hour), 5}, {legacy, true, to.Add(-6 * time.Hour), 4},
	}
	for _, pass := range passes {
		readAndCheck(t, s, c, pass.org, pass.legacy, pass.from, to, pass.limit)
	}
	// Incomplete project pages are rarer; make them frequent for one more listing.
	s.SetFaults(sim.Faults{UnavailableRate: 0.3, Seed: 5})
	listAll()

	// Every kind of fault was met and survived.
	for _, r := range []struct{ route, reason string }{
		{"GET /consumption_history/v2/projects", "429"}, {"GET /consumption_history/v2/projects", "5xx"},
		{"GET /consumption_history/v2/projects", "503"}, {"GET /consumption_history/v2/projects", "bad_body"},
		{"GET /consumption_history/v2/projects", "repeated_page"},
		{"GET /projects", "incomplete_page"}, {"GET /projects", "5xx"},
	} {
		if v := metrictest.Value(t, reg, "neonmeter_neon_api_retries_total", map[string]string{"route": r.route, "reason": r.reason}); v == 0 {
			t.Errorf("no %s retry on %s", r.reason, r.route)
		}
	}

	// The free org has no consumption history on either route.
	free := orgByPlan(t, s, "free", false)
	for _, seq := range []func(context.Context, neon.ConsumptionQuery) iter.Seq2[*neon.ConsumptionPage, error]{c.ConsumptionV2, c.ConsumptionLegacy} {
		s.SetFaults(sim.Faults{})
		_, err := collect(seq(ctx, neon.ConsumptionQuery{OrgID: free.ID, From: from, To: to, Granularity: neon.GranularityHourly}))
		if !errors.Is(err, neon.ErrNoConsumptionHistory) {
			t.Errorf("free org: got %v, want ErrNoConsumptionHistory", err)
		}
	}
}

// readAndCheck reads an org's hourly usage in [from, to) and compares it with the simulator's
// ground truth value by value; the simulator must have served exactly ⌈N/limit⌉ requests plus
// the client's retries.
func readAndCheck(t *testing.T, s *sim.Sim, c *neon.Client, org sim.Org, legacy bool, from, to time.Time, limit int) {
	t.Helper()
	n := len(org.ProjectIDs)
	q := neon.ConsumptionQuery{OrgID: org.ID, From: from, To: to, Granularity: neon.GranularityHourly, Limit: limit}
	metrics := neon.V2Metrics()
	seq := c.ConsumptionV2
	if legacy {
		metrics, seq = neon.LegacyMetrics(), c.ConsumptionLegacy
	}
	simBefore, retriesBefore := s.Stats().ConsumptionRequests, c.Stats().Retries
	pages, err := collect(seq(context.Background(), q))
	if err != nil {
		t.Fatalf("consumption of %s: %v", org.ID, err)
	}
	requests := s.Stats().ConsumptionRequests - simBefore
	retries := c.Stats().Retries - retriesBefore
	if want := int64((n+limit-1)/limit) + retries; requests != want {
		t.Errorf("org %s: %d consumption requests, want ⌈%d/%d⌉ + %d retries = %d", org.ID, requests, n, limit, retries, want)
	}

	got := map[string]map[string]int64{} // project -> "hour metric" -> value
	var order []string
	for _, p := range pages {
		for _, pc := range p.Projects {
			if got[pc.ProjectID] != nil {
				t.Fatalf("project %s twice", pc.ProjectID)
			}
			order = append(order, pc.ProjectID)
			m := map[string]int64{}
			for _, per := range pc.Periods {
				for _, tf := range per.Consumption {
					for _, mv := range tf.Metrics {
						m[tf.Start.Format(time.RFC3339)+" "+mv.Name] = mv.Value
					}
				}
			}
			got[pc.ProjectID] = m
		}
	}
	if !slices.Equal(order, org.ProjectIDs) {
		t.Fatalf("org %s: %d projects read, want %d in the simulator's order", org.ID, len(order), n)
	}
	values := 0
	for _, pid := range org.ProjectIDs {
		reported := 0
		for h := from; h.Before(to); h = h.Add(time.Hour) {
			for _, m := range metrics {
				want := s.Value(pid, m, h)
				v, ok := got[pid][h.Format(time.RFC3339)+" "+m]
				if v != want {
					t.Fatalf("%s %s %s = %d, ground truth %d", pid, h.Format(time.RFC3339), m, v, want)
				}
				if ok {
					reported++
				}
			}
		}
		if reported != len(got[pid]) {
			t.Fatalf("%s: %d values outside the window or unknown", pid, len(got[pid])-reported)
		}
		values += reported
	}
	if values == 0 {
		t.Fatalf("org %s: no usage at all, the comparison proves nothing", org.ID)
	}
	t.Logf("org %s, %s–%s, limit %d: %d projects, %d values, %d requests (%d retries)",
		org.ID, from.Format(time.RFC3339), to.Format(time.RFC3339), limit, n, values, requests, retries)
}

// TestSim_Conformance drives every route of the client through the spec Recorder.
func TestSim_Conformance(t *testing.T) {
	clk := testclock.New(simNow)
	s, rec, base := simServer(t, sim.Config{Projects: 40, Seed: 3, Now: clk.Now, OperationDelay: 30 * time.Second, APIKey: testKey})
	cfg := testConfig(base)
	cfg.OperationTimeout = time.Second
	c := newClient(t, cfg)
	ctx := context.Background()

	// Consumption, both routes, every granularity.
	to := simNow.Truncate(time.Hour)
	day := simNow.Truncate(24 * time.Hour)
	month := time.Date(simNow.Year(), simNow.Month(), 1, 0, 0, 0, 0, time.UTC)
	windows := []neon.ConsumptionQuery{
		{From: to.Add(-168 * time.Hour), To: to, Granularity: neon.GranularityHourly},
		{From: day.AddDate(0, 0, -30), To: day, Granularity: neon.GranularityDaily},
		{From: month.AddDate(0, -1, 0), To: month, Granularity: neon.GranularityMonthly},
	}
	scale := orgByPlan(t, s, "scale", false)
	legacy := orgByPlan(t, s, "", true)
	for _, w := range windows {
		w.OrgID, w.Limit = scale.ID, 3
		pages, err := collect(c.ConsumptionV2(ctx, w))
		if err != nil || len(pages) == 0 {
			t.Fatalf("v2 %s: %d pages, %v", w.Granularity, len(pages), err)
		}
		w.OrgID = legacy.ID
		if pages, err = collect(c.ConsumptionLegacy(ctx, w)); err != nil || len(pages) == 0 {
			t.Fatalf("legacy %s: %d pages, %v", w.Granularity, len(pages), err)
		}
	}
	// Outside the lookback: Neon's 406.
	old := neon.ConsumptionQuery{OrgID: scale.ID, From: to.Add(-200 * time.Hour), To: to.Add(-190 * time.Hour), Granularity: neon.GranularityHourly}
	if _, err := collect(c.ConsumptionV2(ctx, old)); !errors.Is(err, neon.ErrWindow) {
		t.Errorf("old window: got %v, want ErrWindow", err)
	}

	// Projects, endpoints, operations.
	pid := scale.ProjectIDs[0]
	pages, err := collect(c.ListProjects(ctx, neon.ListProjectsQuery{OrgID: scale.ID}))
	if err != nil || len(pages) != 1 || len(pages[0].Projects) != len(scale.ProjectIDs) {
		t.Fatalf("list projects: %v", err)
	}
	p, err := c.GetProject(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Project(pid)
	if p.ID != pid || p.OrgID != scale.ID || p.Counters.ComputeTimeSeconds != st.Counters.ComputeTimeSeconds ||
		p.Counters.DataStorageBytesHour != st.Counters.DataStorageBytesHour || !p.ConsumptionPeriodStart.Equal(st.PeriodStart) || p.SubscriptionType == "" {
		t.Errorf("project %+v, simulator %+v", p, st)
	}
	if _, err := c.GetProject(ctx, "no-such-project-1"); !errors.Is(err, neon.ErrNotFound) {
		t.Errorf("unknown project: %v", err)
	}

	quota := p.Settings.Quota
	quota.ComputeTimeSeconds = p.Counters.ComputeTimeSeconds + 1_000_000
	up, ops, err := c.UpdateProject(ctx, pid, neon.ProjectUpdate{Quota: &quota, DefaultEndpointSettings: &neon.DefaultEndpointSettings{AutoscalingLimitMaxCU: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Settings.Quota != quota || up.DefaultEndpointSettings.AutoscalingLimitMaxCU != 2 {
		t.Errorf("updated project %+v", up)
	}
	if st, _ := s.Project(pid); st.Quota.ComputeTimeSeconds != quota.ComputeTimeSeconds {
		t.Errorf("simulator quota %+v", st.Quota)
	}

	if len(ops) > 0 {
		clk.Add(time.Minute)
		if err := c.WaitOperations(ctx, pid, ops); err != nil {
			t.Fatalf("wait for the update's operations: %v", err)
		}
	}

	eps, err := c.ListEndpoints(ctx, pid)
	if err != nil || len(eps) == 0 {
		t.Fatalf("endpoints: %v", err)
	}
	ep, ops, err := c.SuspendEndpoint(ctx, pid, eps[0].ID)
	if err != nil || ep.ID != eps[0].ID || len(ops) == 0 {
		t.Fatalf("suspend: %+v, %+v, %v", ep, ops, err)
	}
	// While the project's operation runs (by the simulator's clock, which stands still here)
	// a mutation is refused with 423: the client retries, then gives up with ErrLocked.
	lcfg := cfg
	lcfg.MaxRetries = 2
	if _, _, err := newClient(t, lcfg).UpdateProject(ctx, pid, neon.ProjectUpdate{Quota: &quota}); !errors.Is(err, neon.ErrLocked) {
		t.Errorf("mutation during an operation: %v, want ErrLocked", err)
	}
	short := cfg
	short.OperationTimeout = 30 * time.Millisecond
	if err := newClient(t, short).WaitOperations(ctx, pid, ops); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait on running operations: %v, want DeadlineExceeded", err)
	}
	clk.Add(time.Minute)
	if err := c.WaitOperations(ctx, pid, ops); err != nil {
		t.Fatalf("wait operations: %v", err)
	}
	op, err := c.GetOperation(ctx, pid, ops[0].ID)
	if err != nil || op.Status != neon.OperationFinished || op.ID != ops[0].ID || op.Action != "suspend_compute" {
		t.Fatalf("get operation: %+v, %v", op, err)
	}

	// The endpoint is idle now: disabling it wakes it on real Neon, and both sides count that.
	wakesBefore, riskBefore := s.Stats().Wakes, c.Stats().WakeRisk
	disabled := true
	ep, ops, err = c.UpdateEndpoint(ctx, pid, eps[0].ID, neon.EndpointUpdate{Disabled: &disabled, AutoscalingLimitMaxCU: 1})
	if err != nil || !ep.Disabled || ep.AutoscalingLimitMaxCU != 1 {
		t.Fatalf("update endpoint: %+v, %v", ep, err)
	}
	if s.Stats().Wakes != wakesBefore+1 || c.Stats().WakeRisk != riskBefore+1 {
		t.Errorf("wake counters: simulator %d→%d, client %d→%d", wakesBefore, s.Stats().Wakes, riskBefore, c.Stats().WakeRisk)
	}
	clk.Add(time.Minute)
	if err := c.WaitOperations(ctx, pid, ops); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Project(pid); !st.Endpoints[0].Disabled {
		t.Errorf("simulator endpoint not disabled: %+v", st.Endpoints[0])
	}

	// A wrong key: 401, not retried, and neither key in the error.
	bad := testConfig(base)
	bad.APIKey = "napi_wrong_key_zzzz"
	wrong := newClient(t, bad)
	_, err = wrong.GetProject(ctx, pid)
	var ae *neon.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), bad.APIKey) {
		t.Errorf("wrong key: %v", err)
	}
	if wrong.Stats().Requests != 1 {
		t.Errorf("401 retried")
	}

	seen := rec.Operations()
	for _, op := range []string{
		"getConsumptionHistoryPerProjectV2", "getConsumptionHistoryPerProject", "listProjects", "getProject",
		"updateProject", "listProjectEndpoints", "suspendProjectEndpoint", "updateProjectEndpoint", "getProjectOperation",
	} {
		if seen[op] == 0 {
			t.Errorf("operation %s never exercised", op)
		}
	}
}

// TestSim_ClientPacesBelowServerLimit: with the client's consumption bucket below the
// simulator's, a multi-page read gets no 429 because the client waits instead.
func TestSim_ClientPacesBelowServerLimit(t *testing.T) {
	s, _, base := simServer(t, sim.Config{Projects: 500, Seed: 5, Now: testclock.New(simNow).Now, ConsumptionRatePerMin: 1200, ConsumptionBurst: 2})
	cfg := testConfig(base)
	cfg.ConsumptionRatePerMin, cfg.ConsumptionBurst = 1000, 1
	c := newClient(t, cfg)
	org := orgByPlan(t, s, "launch", false)
	to := simNow.Truncate(time.Hour)
	q := neon.ConsumptionQuery{OrgID: org.ID, From: to.Add(-2 * time.Hour), To: to, Granularity: neon.GranularityHourly, Limit: 20}
	pages, err := collect(c.ConsumptionV2(context.Background(), q))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("%d pages; the test needs several", len(pages))
	}
	if st := s.Stats(); st.RateLimited != 0 {
		t.Errorf("simulator rate-limited %d requests", st.RateLimited)
	}
	if st := c.Stats(); st.Throttled < int64(len(pages))-2 || st.Retries != 0 {
		t.Errorf("client stats %+v over %d pages", st, len(pages))
	}
}
