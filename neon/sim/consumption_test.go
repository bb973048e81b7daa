package sim_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

func TestNew_RejectsBadConfig(t *testing.T) {
	for _, cfg := range []sim.Config{
		{Projects: 3},
		{ConsumptionRatePerMin: -1},
		{GeneralBurst: -2},
		{OperationDelay: -time.Second},
	} {
		if _, err := sim.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

func TestNew_Fleet(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 1000, Seed: 3, Now: testclock.New(t0).Now})
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, o := range s.Orgs() {
		counts[o.Plan] = len(o.ProjectIDs)
		for _, id := range o.ProjectIDs {
			if seen[id] {
				t.Fatalf("project %s listed twice", id)
			}
			seen[id] = true
			if !projectIDShape(id) {
				t.Fatalf("project id %q is not shaped like Neon's", id)
			}
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("%d projects, want 1000", len(seen))
	}
	want := map[string]int{"free": 100, "business": 100, "launch": 400, "scale": 400}
	for plan, n := range want {
		if counts[plan] != n {
			t.Errorf("%s org has %d projects, want %d", plan, counts[plan], n)
		}
	}
	// Every org gets a project even when there are only four.
	small := newSim(t, sim.Config{Projects: 4, Seed: 3, Now: testclock.New(t0).Now})
	for _, o := range small.Orgs() {
		if len(o.ProjectIDs) != 1 {
			t.Errorf("4 projects: org %s has %d", o.ID, len(o.ProjectIDs))
		}
	}
	// Profiles are mixed and ≈5 % of projects change plan.
	profiles := map[string]int{}
	changes := 0
	for id := range seen {
		st, _ := s.Project(id)
		profiles[st.Profile]++
		if !st.PlanChangedAt.IsZero() {
			changes++
			if st.PlanChangedAt.Unix()%60 == 0 {
				t.Errorf("plan change of %s at a round minute: %v", id, st.PlanChangedAt)
			}
		}
	}
	for _, p := range []string{"idle", "steady", "bursty", "runaway"} {
		if profiles[p] == 0 {
			t.Errorf("no %s project among 1000: %v", p, profiles)
		}
	}
	if changes != 50 {
		t.Errorf("%d plan changes, want 50 (5 %%)", changes)
	}
}

func projectIDShape(id string) bool {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || len(parts[2]) != 8 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, c := range parts[2] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TestSim_Determinism: the same seed gives the same bytes on every route; another seed does not.
func TestSim_Determinism(t *testing.T) {
	paths := func(s *sim.Sim) []string {
		now := t0
		scale, legacy := orgByPlan(t, s, "scale"), orgByPlan(t, s, "business")
		return []string{
			consumptionURL(false, scale.ID, now.Add(-72*time.Hour), now, "hourly", v2Metrics, 100, ""),
			consumptionURL(false, scale.ID, now.AddDate(0, 0, -50), now, "daily", v2Metrics, 100, ""),
			consumptionURL(true, legacy.ID, now.AddDate(0, -6, 0), now, "monthly", legacyMetrics, 100, ""),
			"/api/v2/projects?limit=400",
			"/api/v2/projects/" + scale.ProjectIDs[3],
			"/api/v2/projects/" + scale.ProjectIDs[3] + "/endpoints",
		}
	}
	read := func(seed int64) [][]byte {
		s := newSim(t, sim.Config{Projects: 60, Seed: seed, Now: testclock.New(t0).Now})
		a := newAPI(t, s.Handler(), "")
		var out [][]byte
		for _, p := range paths(s) {
			out = append(out, a.get(p, nil))
		}
		// Error bodies carry generated request ids: deterministic too.
		_, _, body := a.do(http.MethodGet, "/api/v2/projects/nobody-here-00000000", nil)
		return append(out, body)
	}
	a, b, c := read(11), read(11), read(12)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("response %d differs between two simulators with seed 11", i)
		}
		if i < 3 && bytes.Equal(a[i], c[i]) {
			t.Errorf("response %d is the same for seeds 11 and 12", i)
		}
	}
}

// TestConsumption_Pagination: every project of an org exactly once across pages, newest first.
func TestConsumption_Pagination(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 230, Seed: 5, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	for _, plan := range []string{"launch", "scale"} {
		org := orgByPlan(t, s, plan)
		for _, limit := range []int{1, 7, 23, 100} {
			ids, _ := a.allV2(org.ID, t0.Add(-2*time.Hour), t0, "hourly", []string{"root_branch_bytes_month"}, limit)
			if !slices.Equal(ids, org.ProjectIDs) {
				t.Fatalf("%s limit %d: %d projects, want the org's %d in order", plan, limit, len(ids), len(org.ProjectIDs))
			}
		}
		// Newest-created first.
		var prev time.Time
		for i, id := range org.ProjectIDs {
			st, _ := s.Project(id)
			if i > 0 && !st.CreatedAt.Before(prev) {
				t.Fatalf("%s: project %d (%s) created %v, not before %v", plan, i, id, st.CreatedAt, prev)
			}
			prev = st.CreatedAt
		}
	}
	// A full page with more projects after it carries the cursor; a full last page carries none,
	// so a listing costs exactly ⌈N/limit⌉ requests. A cursor at the end gives an empty page.
	org := orgByPlan(t, s, "launch")
	n := len(org.ProjectIDs)
	var pg v2Page
	a.get(consumptionURL(false, org.ID, t0.Add(-2*time.Hour), t0, "hourly", v2Metrics, n-1, ""), &pg)
	if pg.Pagination == nil || pg.Pagination.Cursor != org.ProjectIDs[n-2] {
		t.Fatalf("full page before the end: pagination %+v, want cursor %s", pg.Pagination, org.ProjectIDs[n-2])
	}
	var last v2Page
	a.get(consumptionURL(false, org.ID, t0.Add(-2*time.Hour), t0, "hourly", v2Metrics, n, ""), &last)
	if len(last.Projects) != n || last.Pagination != nil {
		t.Fatalf("full last page: %d projects, pagination %+v; want %d and none", len(last.Projects), last.Pagination, n)
	}
	var empty v2Page
	a.get(consumptionURL(false, org.ID, t0.Add(-2*time.Hour), t0, "hourly", v2Metrics, 100, org.ProjectIDs[n-1]), &empty)
	if len(empty.Projects) != 0 || empty.Pagination != nil {
		t.Fatalf("after the last project: %d projects, pagination %+v", len(empty.Projects), empty.Pagination)
	}
}

func TestConsumption_Windows(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 20, Seed: 5, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale").ID
	hour := t0.Truncate(time.Hour)
	day := t0.Truncate(24 * time.Hour)
	for _, c := range []struct {
		name     string
		from, to time.Time
		gran     string
		want     int
	}{
		{"hourly edge", hour.Add(-168 * time.Hour), hour, "hourly", 200},
		{"hourly edge rounded", hour.Add(-168*time.Hour + 59*time.Minute), hour, "hourly", 200},
		{"hourly beyond", hour.Add(-169 * time.Hour), hour, "hourly", 406},
		{"daily edge", day.AddDate(0, 0, -60), day, "daily", 200},
		{"daily beyond", day.AddDate(0, 0, -61), day, "daily", 406},
		{"monthly edge", time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), day, "monthly", 200},
		{"monthly beyond", time.Date(2025, 10, 31, 0, 0, 0, 0, time.UTC), day, "monthly", 406},
		{"empty range", hour, hour.Add(30 * time.Minute), "hourly", 406},
		{"to before from", hour, hour.Add(-2 * time.Hour), "hourly", 406},
		{"future to", hour.Add(-2 * time.Hour), hour.Add(48 * time.Hour), "hourly", 200},
	} {
		if got := a.status(http.MethodGet, consumptionURL(false, org, c.from, c.to, c.gran, v2Metrics, 0, ""), nil); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// 2024-03-01 is the floor even inside the window.
	early := testclock.New(time.Date(2024, 3, 2, 12, 0, 0, 0, time.UTC))
	s2 := newSim(t, sim.Config{Projects: 8, Seed: 5, Now: early.Now})
	a2 := newAPI(t, s2.Handler(), "")
	org2 := orgByPlan(t, s2, "scale").ID
	if got := a2.status(http.MethodGet, consumptionURL(false, org2, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), early.Now(), "hourly", v2Metrics, 0, ""), nil); got != 406 {
		t.Errorf("from before 2024-03-01: %d, want 406", got)
	}
	if got := a2.status(http.MethodGet, consumptionURL(false, org2, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), early.Now(), "hourly", v2Metrics, 0, ""), nil); got != 200 {
		t.Errorf("from 2024-03-01: %d, want 200", got)
	}
}

func TestConsumption_BadParameters(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 40, Seed: 5, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale").ID
	base := consumptionURL(false, org, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 0, "")
	for _, c := range []struct {
		name, path string
		want       int
	}{
		{"limit 0", base + "&limit=0", 400},
		{"limit 101", base + "&limit=101", 400},
		{"limit 100", base + "&limit=100", 200},
		{"limit not a number", base + "&limit=ten", 400},
		{"no metrics", consumptionURL(false, org, t0.Add(-3*time.Hour), t0, "hourly", nil, 0, ""), 400},
		{"no org", consumptionURL(false, "", t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 0, ""), 400},
		{"bad granularity", strings.Replace(base, "granularity=hourly", "granularity=weekly", 1), 400},
		{"bad from", strings.Replace(base, "from=", "from=yesterday&x=", 1), 400},
		{"101 project ids", base + "&project_ids=" + strings.Repeat("a-b-00000000,", 100) + "a-b-00000001", 400},
		{"legacy limit 101", consumptionURL(true, "", t0.Add(-3*time.Hour), t0, "hourly", nil, 101, ""), 400},
		{"list limit 401", "/api/v2/projects?limit=401", 400},
		{"list limit 400", "/api/v2/projects?limit=400", 200},
		{"list timeout 50", "/api/v2/projects?timeout=50", 400},
	} {
		status, _, body := a.do(http.MethodGet, c.path, nil)
		if status != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.want, body)
		}
		if status != 200 && !bytes.Contains(body, []byte(`"message":`)) {
			t.Errorf("%s: error body is not a GeneralError: %s", c.name, body)
		}
	}
	// The default limit is 10.
	var pg v2Page
	a.get(base, &pg)
	if len(pg.Projects) != 10 {
		t.Errorf("default limit: %d projects, want 10", len(pg.Projects))
	}
	// X-Request-ID is honoured in error bodies.
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+base+"&limit=0", nil)
	req.Header.Set("X-Request-ID", "req-42")
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ge struct {
		RequestID string `json:"request_id"`
		Code      string `json:"code"`
	}
	if err := jsonDecode(resp, &ge); err != nil || ge.RequestID != "req-42" || ge.Code == "" {
		t.Errorf("error body %+v (%v), want request_id req-42 and a code", ge, err)
	}
}

// TestConsumption_OrgRules: who gets 403 on which route.
func TestConsumption_OrgRules(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 20, Seed: 5, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	for _, o := range s.Orgs() {
		v2 := a.status(http.MethodGet, consumptionURL(false, o.ID, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 0, ""), nil)
		legacy := a.status(http.MethodGet, consumptionURL(true, o.ID, t0.Add(-3*time.Hour), t0, "hourly", nil, 0, ""), nil)
		wantV2, wantLegacy := 200, 403
		switch o.Plan {
		case "free":
			wantV2 = 403
		case "business":
			wantV2, wantLegacy = 403, 200
		}
		if v2 != wantV2 || legacy != wantLegacy {
			t.Errorf("org %s (%s): v2 %d legacy %d, want %d and %d", o.ID, o.Plan, v2, legacy, wantV2, wantLegacy)
		}
	}
}

// TestConsumption_Sparse: zero metrics and empty buckets are omitted, storage is present every
// hour, and idle projects have hours without compute.
func TestConsumption_Sparse(t *testing.T) {
	s := newSim(t, sim.Config{Projects: 200, Seed: 9, Now: testclock.New(t0).Now})
	a := newAPI(t, s.Handler(), "")
	from, to := t0.Truncate(time.Hour).Add(-72*time.Hour), t0.Truncate(time.Hour)
	idleHoursWithoutCompute := 0
	for _, plan := range []string{"launch", "scale"} {
		org := orgByPlan(t, s, plan)
		_, vals := a.allV2(org.ID, from, to, "hourly", v2Metrics, 100)
		for c, v := range vals {
			if v <= 0 {
				t.Fatalf("%+v: value %d reported; zero metrics must be omitted", c, v)
			}
		}
		for _, id := range org.ProjectIDs {
			st, _ := s.Project(id)
			for h := from; h.Before(to); h = h.Add(time.Hour) {
				if _, ok := vals[cell{id, "root_branch_bytes_month", h}]; !ok {
					t.Fatalf("%s has no storage at %v", id, h)
				}
				if _, ok := vals[cell{id, "compute_unit_seconds", h}]; !ok && st.Profile == "idle" {
					idleHoursWithoutCompute++
				}
			}
		}
	}
	if idleHoursWithoutCompute == 0 {
		t.Fatal("idle projects always reported compute")
	}
	// Only compute requested: buckets without compute are omitted entirely.
	org := orgByPlan(t, s, "scale")
	var pg v2Page
	a.get(consumptionURL(false, org.ID, from, to, "hourly", []string{"compute_unit_seconds"}, 100, ""), &pg)
	short := false
	for _, p := range pg.Projects {
		n := 0
		for _, per := range p.Periods {
			n += len(per.Consumption)
			for _, tf := range per.Consumption {
				if len(tf.Metrics) == 0 {
					t.Fatalf("%s: empty bucket at %v", p.ProjectID, tf.Start)
				}
			}
			if len(per.Consumption) == 0 {
				t.Fatalf("%s: period without buckets", p.ProjectID)
			}
		}
		short = short || n < 72
	}
	if !short {
		t.Fatal("every project had compute in every hour")
	}
}

// TestConsumption_Granularities: daily = Σ hourly and monthly = Σ daily, bucket for bucket.
func TestConsumption_Granularities(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 60, Seed: 4, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale")
	dayEnd := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
	dayStart := dayEnd.AddDate(0, 0, -6)
	_, hourly := a.allV2(org.ID, dayStart, dayEnd, "hourly", v2Metrics, 100)
	_, daily := a.allV2(org.ID, dayStart, dayEnd, "daily", v2Metrics, 100)
	sums := map[cell]int64{}
	for c, v := range hourly {
		sums[cell{c.project, c.metric, c.start.Truncate(24 * time.Hour)}] += v
	}
	if len(sums) != len(daily) {
		t.Fatalf("%d daily values, want %d", len(daily), len(sums))
	}
	for c, v := range sums {
		if daily[c] != v {
			t.Fatalf("%+v: daily %d, Σ hourly %d", c, daily[c], v)
		}
	}
	// Monthly over the 50 days of daily data that cover October and November.
	monthStart := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	_, daily = a.allV2(org.ID, monthStart, dayEnd, "daily", v2Metrics, 100)
	_, monthly := a.allV2(org.ID, monthStart, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "monthly", v2Metrics, 100)
	sums = map[cell]int64{}
	for c, v := range daily {
		sums[cell{c.project, c.metric, time.Date(c.start.Year(), c.start.Month(), 1, 0, 0, 0, 0, time.UTC)}] += v
	}
	for c, v := range sums {
		if monthly[c] != v {
			t.Fatalf("%+v: monthly %d, Σ daily %d", c, monthly[c], v)
		}
	}
	if len(monthly) != len(sums) {
		t.Fatalf("%d monthly values, want %d", len(monthly), len(sums))
	}
}

// TestValue_MatchesAPI: the ground truth equals every reported value, and is 0 exactly where
// nothing is reported, for both routes.
func TestValue_MatchesAPI(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 80, Seed: 2, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	from, to := t0.Add(-72*time.Hour).Truncate(time.Hour), t0.Add(time.Hour)
	for _, plan := range []string{"launch", "scale"} {
		org := orgByPlan(t, s, plan)
		_, vals := a.allV2(org.ID, from, to, "hourly", v2Metrics, 100)
		for _, id := range org.ProjectIDs {
			for h := from; h.Before(to); h = h.Add(time.Hour) {
				for _, m := range v2Metrics {
					if got, want := s.Value(id, m, h), vals[cell{id, m, h}]; got != want {
						t.Fatalf("Value(%s, %s, %v) = %d, API reported %d", id, m, h, got, want)
					}
				}
			}
		}
	}
	// The incomplete current hour is absent.
	if v := s.Value(orgByPlan(t, s, "scale").ProjectIDs[0], "root_branch_bytes_month", t0.Truncate(time.Hour)); v != 0 {
		t.Errorf("current hour has value %d", v)
	}
	legacy := orgByPlan(t, s, "business")
	var lp legacyPage
	a.get(consumptionURL(true, legacy.ID, from, to, "hourly", legacyMetrics, 100, ""), &lp)
	checked := 0
	for _, p := range lp.Projects {
		for _, per := range p.Periods {
			for _, tf := range per.Consumption {
				start, err := time.Parse(time.RFC3339, tf["timeframe_start"].(string))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range legacyMetrics {
					var got int64
					if v, ok := tf[m]; ok {
						got = int64(v.(float64))
					}
					if want := s.Value(p.ProjectID, m, start); got != want {
						t.Fatalf("legacy %s %s %v: API %d, Value %d", p.ProjectID, m, start, got, want)
					}
					checked++
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no legacy values checked")
	}
	if s.Value(legacy.ProjectIDs[0], "compute_unit_seconds", from) != 0 {
		t.Error("a legacy project has a v2 metric")
	}
}

// TestConsumption_Provisional: the last two hours grow in 15-minute steps, then settle.
func TestConsumption_Provisional(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	s := newSim(t, sim.Config{Projects: 20, Seed: 2, Now: clk.Now})
	id := orgByPlan(t, s, "scale").ProjectIDs[0]
	hour := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var seen []int64
	for range 10 {
		seen = append(seen, s.Value(id, "root_branch_bytes_month", hour))
		clk.Add(15 * time.Minute)
	}
	for i := 1; i < 8; i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("provisional values do not grow every 15 minutes: %v", seen)
		}
	}
	if seen[8] <= seen[7] || seen[9] != seen[8] {
		t.Fatalf("value does not settle after two hours: %v", seen)
	}
	// Within one 15-minute step nothing moves.
	v := s.Value(id, "root_branch_bytes_month", hour.Add(2*time.Hour))
	clk.Add(5 * time.Minute)
	if w := s.Value(id, "root_branch_bytes_month", hour.Add(2*time.Hour)); w != v {
		t.Fatalf("value changed within a refresh step: %d → %d", v, w)
	}
}

// TestConsumption_Periods: calendar-month periods, past ones with period_end, and a mid-month
// plan change splitting a period at a non-round instant.
func TestConsumption_Periods(t *testing.T) {
	clk := testclock.New(time.Date(2026, 12, 2, 6, 30, 0, 0, time.UTC))
	s := newSim(t, sim.Config{Projects: 200, Seed: 8, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale")
	var pg v2Page
	a.get(consumptionURL(false, org.ID, clk.Now().Add(-100*time.Hour), clk.Now(), "hourly", v2Metrics, 1, ""), &pg)
	pers := pg.Projects[0].Periods
	if len(pers) != 2 {
		t.Fatalf("across a month boundary: %d periods, want 2", len(pers))
	}
	nov, dec := pers[0], pers[1]
	if !nov.PeriodStart.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || nov.PeriodEnd == nil || !nov.PeriodEnd.Equal(dec.PeriodStart) {
		t.Fatalf("November period %v–%v, December starts %v", nov.PeriodStart, nov.PeriodEnd, dec.PeriodStart)
	}
	if dec.PeriodEnd != nil || dec.PeriodID == nov.PeriodID {
		t.Fatalf("current period: end %v, ids %s %s", dec.PeriodEnd, nov.PeriodID, dec.PeriodID)
	}
	// A plan change inside the hourly window.
	var changed string
	var at time.Time
	for _, id := range org.ProjectIDs {
		st, _ := s.Project(id)
		if !st.PlanChangedAt.IsZero() && st.PlanChangedAt.After(clk.Now().Add(-160*time.Hour)) {
			changed, at = id, st.PlanChangedAt
			break
		}
	}
	if changed == "" {
		t.Fatal("no plan change in the last 160 hours")
	}
	from := at.Truncate(time.Hour).Add(-3 * time.Hour)
	a.get(consumptionURL(false, org.ID, from, from.Add(8*time.Hour), "hourly", v2Metrics, 0, "")+"&project_ids="+changed, &pg)
	pers = pg.Projects[0].Periods
	if len(pers) < 2 {
		t.Fatalf("plan change at %v: %d periods", at, len(pers))
	}
	var before, after int
	for i, per := range pers {
		if per.PeriodStart.Equal(at) {
			after = i
			before = i - 1
		}
	}
	if after == 0 || pers[before].PeriodPlan != "launch" || pers[after].PeriodPlan != "scale" || !pers[before].PeriodEnd.Equal(at) {
		t.Fatalf("plan change at %v: periods %+v", at, pers)
	}
	// The bucket containing the change instant belongs to the old period.
	last := pers[before].Consumption[len(pers[before].Consumption)-1]
	if !last.Start.Equal(at.Truncate(time.Hour)) {
		t.Fatalf("old period ends with bucket %v, want %v", last.Start, at.Truncate(time.Hour))
	}
	if st, _ := s.Project(changed); st.Plan != "scale" {
		t.Fatalf("project state after change: plan %s", st.Plan)
	}
}

// TestRevise: Revise changes only the last hours, and reports exactly how many values changed.
func TestRevise(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 40, Seed: 6, Now: clk.Now})
	type key struct {
		id, m string
		h     time.Time
	}
	snapshot := func() map[key]int64 {
		out := map[key]int64{}
		for _, o := range s.Orgs() {
			metrics := v2Metrics
			if o.Legacy {
				metrics = legacyMetrics
			}
			for _, id := range o.ProjectIDs {
				for h := t0.Truncate(time.Hour).Add(-10 * time.Hour); h.Before(t0); h = h.Add(time.Hour) {
					for _, m := range metrics {
						out[key{id, m, h}] = s.Value(id, m, h)
					}
				}
			}
		}
		return out
	}
	before := snapshot()
	n := s.Revise(3 * time.Hour)
	after := snapshot()
	changed := 0
	metricsChanged := map[string]bool{}
	for k, v := range before {
		if after[k] == v {
			continue
		}
		changed++
		metricsChanged[k.m] = true
		if k.h.Before(t0.Truncate(time.Hour).Add(-3 * time.Hour)) {
			t.Fatalf("Revise(3h) changed %+v, older than 3 hours", k)
		}
		if after[k] < v {
			t.Fatalf("revision lowered %+v: %d → %d", k, v, after[k])
		}
	}
	if n == 0 || n != changed {
		t.Fatalf("Revise returned %d, %d values changed", n, changed)
	}
	if len(metricsChanged) == len(v2Metrics)+len(legacyMetrics) {
		t.Fatalf("every metric changed; revisions should touch some")
	}
	if s.Revise(0) != 0 {
		t.Fatal("Revise(0) changed values")
	}
}

func jsonDecode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b := new(bytes.Buffer)
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return err
	}
	return jsonUnmarshal(b.Bytes(), out)
}
