package sim_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// activeHours returns, per project, whether its compute ran in each of the n hours from
// `from`, read from the ground truth (compute_unit_seconds, or active_time_seconds on the
// legacy route). The clock must be at least 2 h past the last hour so values are final.
func activeHours(t testing.TB, s *sim.Sim, from time.Time, n int) map[string][]bool {
	t.Helper()
	out := map[string][]bool{}
	for _, o := range s.Orgs() {
		for _, id := range o.ProjectIDs {
			names := s.RouteMetrics(id)
			col := slices.Index(names, "compute_unit_seconds")
			if o.Legacy {
				col = slices.Index(names, "active_time_seconds")
			}
			if col < 0 {
				t.Fatalf("%s: no activity metric in %v", id, names)
			}
			row := make([]bool, 0, n)
			s.HourlyTruth(id, from, from.Add(time.Duration(n)*time.Hour), func(_ time.Time, v []int64) {
				row = append(row, v[col] > 0)
			})
			if len(row) != n {
				t.Fatalf("%s: %d hours of truth, want %d", id, len(row), n)
			}
			out[id] = row
		}
	}
	return out
}

// TestActivity_FleetShare checks the fleet-scale model on 20,000 projects over a week: the
// share running in an hour averages ActiveShare with a daily peak, a few projects are always
// on, and most are dormant, running a few hours a week at most.
func TestActivity_FleetShare(t *testing.T) {
	const n, share = 20_000, 0.10
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: n, Seed: 3, Now: clk.Now, ActiveShare: share})
	from := t0.Truncate(time.Hour).Add(-170 * time.Hour)
	act := activeHours(t, s, from, 168)

	perHour := make([]int, 168)
	quiet, always := 0, 0
	for _, row := range act {
		hours := 0
		for h, on := range row {
			if on {
				perHour[h]++
				hours++
			}
		}
		switch {
		case hours == 168:
			always++
		case hours <= 4:
			quiet++
		}
	}
	total := 0
	byHourOfDay := make([]float64, 24)
	for h, c := range perHour {
		total += c
		got := float64(c) / n
		if got < 0.6*share || got > 1.4*share {
			t.Errorf("hour %d: %.3f of the fleet active, want within 40 %% of %.2f", h, got, share)
		}
		byHourOfDay[from.Add(time.Duration(h)*time.Hour).Hour()] += got / 7
	}
	t.Logf("mean %.4f always %d quiet %d peak/trough %.3f/%.3f", float64(total)/n/168, always, quiet, slices.Max(byHourOfDay), slices.Min(byHourOfDay))
	if mean := float64(total) / n / 168; mean < 0.95*share || mean > 1.05*share {
		t.Errorf("mean hourly share %.4f, want %.2f ± 5 %%", mean, share)
	}
	if peak, trough := slices.Max(byHourOfDay), slices.Min(byHourOfDay); peak < 1.3*trough {
		t.Errorf("no daily peak: busiest hour %.3f, quietest %.3f", peak, trough)
	}
	if a := float64(always) / n; a < 0.01 || a > 0.025 {
		t.Errorf("always-on share %.4f, want about %.3f", a, 0.15*share)
	}
	if q := float64(quiet) / n; q < 0.6 {
		t.Errorf("%.3f of the fleet active at most 4 hours in the week, want most (≥ 0.6)", q)
	}
	// Profiles name the classes.
	seen := map[string]bool{}
	for _, o := range s.Orgs() {
		for _, id := range o.ProjectIDs[:50] {
			st, _ := s.Project(id)
			seen[st.Profile] = true
		}
	}
	for p := range seen {
		if p != "dormant" && p != "diurnal" && p != "always-on" {
			t.Errorf("profile %q in the fleet-scale model", p)
		}
	}
}

// TestActivity_ShareRange: every share in range gives about that share, including a very
// quiet and a busy fleet.
func TestActivity_ShareRange(t *testing.T) {
	for _, share := range []float64{0.002, 0.3, sim.MaxActiveShare} {
		clk := testclock.New(t0)
		s := newSim(t, sim.Config{Projects: 6000, Seed: 5, Now: clk.Now, ActiveShare: share})
		act := activeHours(t, s, t0.Truncate(time.Hour).Add(-50*time.Hour), 48)
		on := 0
		for _, row := range act {
			for _, x := range row {
				if x {
					on++
				}
			}
		}
		if got := float64(on) / 6000 / 48; got < 0.85*share || got > 1.15*share {
			t.Errorf("ActiveShare %v: realised %.4f", share, got)
		}
	}
	for _, bad := range []float64{-0.1, 0.51, 1} {
		if _, err := sim.New(sim.Config{Projects: 10, ActiveShare: bad}); err == nil || !strings.Contains(err.Error(), "ActiveShare") {
			t.Errorf("ActiveShare %v: %v, want an error naming ActiveShare", bad, err)
		}
	}
}

// listItem is the part of a ProjectListItem these tests read.
type listItem struct {
	ID                   string     `json:"id"`
	OrgID                string     `json:"org_id"`
	ComputeLastActiveAt  *time.Time `json:"compute_last_active_at"`
	ActiveTime           int64      `json:"active_time"`
	CPUUsedSec           int64      `json:"cpu_used_sec"`
	SyntheticStorageSize int64      `json:"synthetic_storage_size"`
}

func listAll(t testing.TB, a *api) []listItem {
	t.Helper()
	var out []listItem
	cursor := ""
	for range 1000 {
		var pg struct {
			Projects   []listItem `json:"projects"`
			Pagination *struct {
				Cursor string `json:"cursor"`
			} `json:"pagination"`
		}
		q := url.Values{"limit": {"400"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		a.get("/api/v2/projects?"+q.Encode(), &pg)
		out = append(out, pg.Projects...)
		if pg.Pagination == nil || len(pg.Projects) < 400 {
			return out
		}
		cursor = pg.Pagination.Cursor
	}
	t.Fatal("list does not end")
	return nil
}

// TestList_ConsistentWithConsumption: compute_last_active_at, active_time and
// synthetic_storage_size of every list item agree with the consumption the simulator reports
// (read once the hours are final), and with GET /projects/{id}.
func TestList_ConsistentWithConsumption(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 2000, Seed: 11, Now: clk.Now, ActiveShare: 0.1})
	a := newAPI(t, s.Handler(), "")
	items := listAll(t, a)
	if len(items) != 2000 {
		t.Fatalf("listed %d projects, want 2000", len(items))
	}
	hour := t0.Truncate(time.Hour)
	periods := map[string]time.Time{}
	for _, it := range items {
		st, _ := s.Project(it.ID)
		periods[it.ID] = st.PeriodStart
	}
	clk.Set(t0.Add(3 * time.Hour)) // every hour up to t0's is final now
	defer clk.Set(t0)
	act := activeHours(t, s, hour.Add(-168*time.Hour), 169) // the last entry is t0's own hour
	withActivity, legacyChecked := 0, 0
	for _, it := range items {
		row := act[it.ID]
		var want *time.Time
		switch last := slices.Index(reversed(row), true); {
		case row[168]:
			want = &t0
		case last >= 0:
			w := hour.Add(-time.Duration(last-1) * time.Hour) // end of hour 168-last
			want = &w
		}
		if (want == nil) != (it.ComputeLastActiveAt == nil) || (want != nil && !want.Equal(*it.ComputeLastActiveAt)) {
			t.Fatalf("%s: compute_last_active_at %v, want %v", it.ID, it.ComputeLastActiveAt, want)
		}
		if want != nil {
			withActivity++
		}
		if it.OrgID != "org-sim-legacy" {
			continue
		}
		// The legacy route reports active_time_seconds and synthetic_storage_size_bytes: the
		// period's sum and the current hour's level must match the list exactly.
		names := s.RouteMetrics(it.ID)
		colActive, colStorage := slices.Index(names, "active_time_seconds"), slices.Index(names, "synthetic_storage_size_bytes")
		var sum, storage int64
		s.HourlyTruth(it.ID, periods[it.ID], hour.Add(time.Hour), func(h time.Time, v []int64) {
			if h.Before(hour) {
				sum += v[colActive]
			} else {
				storage = v[colStorage]
			}
		})
		if it.ActiveTime != sum || it.SyntheticStorageSize != storage {
			t.Fatalf("%s: active_time %d, synthetic_storage_size %d; consumption says %d and %d", it.ID, it.ActiveTime, it.SyntheticStorageSize, sum, storage)
		}
		legacyChecked++
	}
	if withActivity == 0 || withActivity == len(items) || legacyChecked < 150 {
		t.Fatalf("weak check: %d of %d projects active in the week, %d legacy projects compared", withActivity, len(items), legacyChecked)
	}

	// The list's counters equal GET /projects/{id}'s, which sums every metric.
	clk.Set(t0)
	for _, it := range items[:200] {
		var got struct {
			Project struct {
				ActiveTimeSeconds   int64      `json:"active_time_seconds"`
				ComputeTimeSeconds  int64      `json:"compute_time_seconds"`
				ComputeLastActiveAt *time.Time `json:"compute_last_active_at"`
			} `json:"project"`
		}
		a.get("/api/v2/projects/"+it.ID, &got)
		p := got.Project
		if p.ActiveTimeSeconds != it.ActiveTime || p.ComputeTimeSeconds != it.CPUUsedSec ||
			(p.ComputeLastActiveAt == nil) != (it.ComputeLastActiveAt == nil) ||
			(p.ComputeLastActiveAt != nil && !p.ComputeLastActiveAt.Equal(*it.ComputeLastActiveAt)) {
			t.Fatalf("%s: GET says %+v, the list %+v", it.ID, p, it)
		}
	}
}

func reversed(b []bool) []bool {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}

// TestConsumption_ProjectIDsEndTheListing: on both routes, up to 100 requested ids with
// limit 100 come back on one page without pagination, so a client makes exactly one call;
// with a smaller limit the pages run newest-created first and the last one has no cursor.
func TestConsumption_ProjectIDsEndTheListing(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 1200, Seed: 2, Now: clk.Now, ActiveShare: 0.1})
	a := newAPI(t, s.Handler(), "")
	from, to := t0.Truncate(time.Hour).Add(-6*time.Hour), t0.Truncate(time.Hour)
	for _, c := range []struct {
		legacy  bool
		plan    string
		metrics []string
	}{{false, "scale", v2Metrics}, {true, "business", legacyMetrics}} {
		org := orgByPlan(t, s, c.plan)
		// 100 ids out of order, newest first expected back; then 97 of them plus 3 of another org.
		pick := make([]string, 0, 100)
		for i := 0; i < 100; i++ {
			pick = append(pick, org.ProjectIDs[(i*7)%len(org.ProjectIDs)])
		}
		slices.Sort(pick)
		pick = slices.Compact(pick)
		if len(pick) != 100 {
			t.Fatalf("%s: picked %d distinct ids", c.plan, len(pick))
		}
		other := orgByPlan(t, s, "launch").ProjectIDs[:3]
		for _, ids := range [][]string{pick, append(slices.Clone(pick[:97]), other...)} {
			want := orgOrder(org, ids)
			before := s.Stats().ConsumptionRequests
			got, calls := pagesOf(t, a, c.legacy, org.ID, from, to, c.metrics, 100, ids)
			if !slices.Equal(got, want) || calls != 1 || s.Stats().ConsumptionRequests-before != 1 {
				t.Errorf("%s, %d ids, limit 100: %d projects in %d calls, want %d in 1", c.plan, len(ids), len(got), calls, len(want))
			}
		}
		got, calls := pagesOf(t, a, c.legacy, org.ID, from, to, c.metrics, 40, pick)
		if !slices.Equal(got, orgOrder(org, pick)) || calls != 3 {
			t.Errorf("%s, limit 40: %d projects in %d calls, want 100 in 3", c.plan, len(got), calls)
		}
	}
}

// orgOrder returns the ids of org among ids, in the org's listing order (newest first).
func orgOrder(org sim.Org, ids []string) []string {
	var out []string
	for _, id := range org.ProjectIDs {
		if slices.Contains(ids, id) {
			out = append(out, id)
		}
	}
	return out
}

// pagesOf reads a filtered listing until a page has no pagination, as a client following the
// cursor does, and returns the projects and the number of calls.
func pagesOf(t *testing.T, a *api, legacy bool, org string, from, to time.Time, metrics []string, limit int, ids []string) ([]string, int) {
	t.Helper()
	var got []string
	cursor := ""
	for calls := 1; calls < 50; calls++ {
		var pg legacyPage // the project ids and pagination read the same on both routes
		a.get(consumptionURL(legacy, org, from, to, "hourly", metrics, limit, cursor)+"&project_ids="+strings.Join(ids, ","), &pg)
		for _, p := range pg.Projects {
			got = append(got, p.ProjectID)
		}
		if pg.Pagination == nil {
			return got, calls
		}
		cursor = pg.Pagination.Cursor
	}
	t.Fatal("filtered listing does not end")
	return nil, 0
}

// TestRateNow_CountsSimulatedMinutes: with RateNow on a (simulated) clock, the consumption
// bucket refills by that clock, not by real time, and its 429s carry no Retry-After.
func TestRateNow_CountsSimulatedMinutes(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 40, Seed: 1, Now: clk.Now, RateNow: clk.Now, ConsumptionRatePerMin: 2, GeneralRatePerMin: 60})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale")
	path := consumptionURL(false, org.ID, t0.Add(-3*time.Hour), t0, "hourly", v2Metrics, 100, "")
	var statuses []int
	for i := range 6 {
		status, h, _ := a.do(http.MethodGet, path, nil)
		statuses = append(statuses, status)
		if h.Get("Retry-After") != "" {
			t.Errorf("call %d: Retry-After %q on a simulated clock", i, h.Get("Retry-After"))
		}
		if i%2 == 1 {
			clk.Add(30 * time.Second) // one token per 30 simulated seconds
		}
	}
	if want := []int{200, 429, 200, 429, 200, 429}; !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	st := s.Stats()
	if st.ConsumptionRequests != 6 || st.ConsumptionRateLimited != 3 || st.RateLimited != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Real time alone gives nothing back: the frozen simulated clock keeps the bucket empty.
	if status, _, _ := a.do(http.MethodGet, path, nil); status != http.StatusOK {
		t.Fatalf("the token of the last 30 simulated seconds: %d, want 200", status)
	}
	time.Sleep(50 * time.Millisecond)
	if status, _, _ := a.do(http.MethodGet, path, nil); status != http.StatusTooManyRequests {
		t.Fatalf("after real time passed on a frozen simulated clock: %d, want 429", status)
	}
}

// TestHourlyTruth_EqualsValue: the bulk accessor returns exactly Value, including provisional
// hours, revised hours and hours outside the history, for both activity models.
func TestHourlyTruth_EqualsValue(t *testing.T) {
	for _, share := range []float64{0, 0.1} {
		clk := testclock.New(t0)
		s := newSim(t, sim.Config{Projects: 200, Seed: 9, Now: clk.Now, ActiveShare: share, HistoryStart: t0.Add(-30 * time.Hour)})
		s.Revise(5 * time.Hour)
		from, to := t0.Add(-40*time.Hour), t0.Add(2*time.Hour)
		checked := 0
		for _, o := range s.Orgs() {
			for _, id := range o.ProjectIDs[:10] {
				names := s.RouteMetrics(id)
				if !slices.IsSorted(names) || (len(names) != 8 && len(names) != 7) {
					t.Fatalf("RouteMetrics(%s) = %v", id, names)
				}
				n := 0
				activity := slices.Index(names, "compute_unit_seconds")
				if o.Legacy {
					activity = slices.Index(names, "active_time_seconds")
				}
				s.HourlyTruth(id, from, to, func(h time.Time, v []int64) {
					n++
					if h.Before(t0.Truncate(time.Hour)) && s.Ran(id, h) != (v[activity] > 0) {
						t.Fatalf("%s %v: Ran %v, activity metric %d", id, h, s.Ran(id, h), v[activity])
					}
					for i, m := range names {
						if want := s.Value(id, m, h); v[i] != want {
							t.Fatalf("%s %s %v: HourlyTruth %d, Value %d", id, m, h, v[i], want)
						}
						if v[i] != 0 {
							checked++
						}
					}
				})
				if n != 42 {
					t.Fatalf("%s: %d hours, want 42", id, n)
				}
			}
		}
		if checked < 1000 {
			t.Fatalf("share %v: only %d non-zero values compared", share, checked)
		}
		if s.HourlyTruth("no-such-project", from, to, func(time.Time, []int64) {}) || s.RouteMetrics("no-such-project") != nil || s.Ran("no-such-project", from) {
			t.Error("unknown project answered")
		}
	}
}

// TestList_CountersFollowClockAndState: the list's incrementally kept counters stay equal to
// GET /projects/{id}'s full sums as the clock moves forward, back and into a new month, and
// after quota changes and disabled endpoints change what later hours may use.
func TestList_CountersFollowClockAndState(t *testing.T) {
	for _, cfg := range []sim.Config{{ActiveShare: 0.2}, {LaunchCaveat: true}} {
		clk := testclock.New(t0)
		cfg.Projects, cfg.Seed, cfg.Now = 120, 4, clk.Now
		s := newSim(t, cfg)
		a := newAPI(t, s.Handler(), "")
		compare := func(step string) {
			t.Helper()
			moving := 0
			for _, it := range listAll(t, a) {
				var got struct {
					Project struct {
						ActiveTimeSeconds  int64 `json:"active_time_seconds"`
						ComputeTimeSeconds int64 `json:"compute_time_seconds"`
					} `json:"project"`
				}
				a.get("/api/v2/projects/"+it.ID, &got)
				if got.Project.ActiveTimeSeconds != it.ActiveTime || got.Project.ComputeTimeSeconds != it.CPUUsedSec {
					t.Fatalf("%s: %s: list active_time %d cpu_used_sec %d, GET %+v", step, it.ID, it.ActiveTime, it.CPUUsedSec, got.Project)
				}
				if it.ActiveTime > 0 {
					moving++
				}
			}
			if moving == 0 {
				t.Fatalf("%s: no project has active time: the comparison proves nothing", step)
			}
		}
		compare("start")
		clk.Add(5 * time.Hour)
		ids := orgByPlan(t, s, "scale").ProjectIDs
		for _, id := range ids[:6] {
			patchQuota(t, a, id, map[string]any{"active_time_seconds": 1})
		}
		for _, id := range ids[6:10] {
			var eps struct {
				Endpoints []struct {
					ID string `json:"id"`
				} `json:"endpoints"`
			}
			a.get("/api/v2/projects/"+id+"/endpoints", &eps)
			for _, ep := range eps.Endpoints {
				if st := a.status(http.MethodPatch, "/api/v2/projects/"+id+"/endpoints/"+ep.ID, map[string]any{"endpoint": map[string]any{"disabled": true}}); st != 200 {
					t.Fatalf("disable %s: %d", ep.ID, st)
				}
			}
		}
		clk.Add(3 * time.Hour)
		compare("after quota and disable")
		// A change made at an earlier clock reading rewrites hours the list has summed already.
		clk.Add(-3 * time.Hour)
		for _, id := range ids[10:16] {
			patchQuota(t, a, id, map[string]any{"active_time_seconds": 1})
		}
		clk.Add(4 * time.Hour)
		compare("change behind the summed hours")
		clk.Set(t0.Add(-2 * time.Hour))
		compare("clock set back")
		clk.Set(time.Date(2026, 12, 1, 7, 10, 0, 0, time.UTC))
		compare("next month")
	}
}
