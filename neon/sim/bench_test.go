package sim_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// BenchmarkConsumptionPage serves one v2 page of 100 projects × 72 h × 8 metrics from a fleet of
// 10,000 projects, through the handler (no network).
func BenchmarkConsumptionPage(b *testing.B) {
	s := newSim(b, sim.Config{Projects: 10_000, Seed: 1, Now: testclock.New(t0).Now})
	org := orgByPlan(b, s, "scale")
	from := t0.Truncate(time.Hour).Add(-72 * time.Hour)
	path := consumptionURL(false, org.ID, from, from.Add(72*time.Hour), "hourly", v2Metrics, 100, org.ProjectIDs[999])
	h := s.Handler()
	serve := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	w := serve()
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
	var pg v2Page
	decode(b, w.Body.Bytes(), &pg)
	values := len(pageValues(b, &pg))
	b.SetBytes(int64(w.Body.Len()))
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "pages/s")
	b.ReportMetric(float64(b.N*values)/sec, "values/s")
}

// BenchmarkNew100k builds a fleet of 100,000 projects and reports the heap it keeps.
func BenchmarkNew100k(b *testing.B) {
	var keep *sim.Sim
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep = newSim(b, sim.Config{Projects: 100_000, Seed: 1, Now: testclock.New(t0).Now})
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
	runtime.KeepAlive(keep)
}

// TestSim_Concurrent mixes reads, mutations, revisions and fault changes from several
// goroutines; run with -race. Every response must still be well-formed.
func TestSim_Concurrent(t *testing.T) {
	clk := testclock.New(t0)
	s := newSim(t, sim.Config{Projects: 120, Seed: 1, Now: clk.Now})
	a := newAPI(t, s.Handler(), "")
	org := orgByPlan(t, s, "scale")
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := org.ProjectIDs[g]
			for i := range 15 {
				var status int
				switch i % 5 {
				case 0:
					status, _, _ = a.do(http.MethodGet, consumptionURL(false, org.ID, t0.Add(-24*time.Hour), t0, "hourly", v2Metrics, 20, ""), nil)
				case 1:
					status, _, _ = a.do(http.MethodPatch, "/api/v2/projects/"+id, map[string]any{"project": map[string]any{"settings": map[string]any{"quota": map[string]any{"active_time_seconds": i}}}})
				case 2:
					status, _, _ = a.do(http.MethodGet, "/api/v2/projects?limit=50", nil)
				case 3:
					s.Revise(2 * time.Hour)
					s.TryWake(id)
					status = 200
				case 4:
					clk.Add(time.Minute)
					s.SetFaults(sim.Faults{Seed: int64(i)})
					status, _, _ = a.do(http.MethodGet, "/api/v2/projects/"+id+"/endpoints", nil)
				}
				if status != 200 {
					errs <- http.StatusText(status)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent request failed: %s", e)
	}
	if st := s.Stats(); st.Requests["PATCH /projects/{project_id}"] != 12 {
		t.Errorf("PATCH count %d, want 12", st.Requests["PATCH /projects/{project_id}"])
	}
}

// BenchmarkNew1M builds the fleet-scale model with 1,000,000 projects (ActiveShare 0.1) and
// reports the heap it keeps (goal: under ~300 MB, so a fleet benchmark fits beside neonmeter).
func BenchmarkNew1M(b *testing.B) {
	var keep *sim.Sim
	var before, after runtime.MemStats
	for b.Loop() {
		keep = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep = newSim(b, sim.Config{Projects: 1_000_000, Seed: 1, Now: testclock.New(t0).Now, ActiveShare: 0.1})
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
	runtime.KeepAlive(keep)
}

// BenchmarkServe1M serves, from a 1,000,000-project fleet-scale model through the handler (no
// network), the three requests a budgeted collector makes: a page of GET /projects (400
// items), a v2 consumption call for 100 chosen projects × 3 h (project_ids), and a rolling
// page of 100 projects × 24 h deep in the org's listing.
func BenchmarkServe1M(b *testing.B) {
	s := newSim(b, sim.Config{Projects: 1_000_000, Seed: 1, Now: testclock.New(t0).Now, ActiveShare: 0.1})
	org := orgByPlan(b, s, "scale")
	hour := t0.Truncate(time.Hour)
	ids := url.Values{}
	for i := range 100 {
		ids.Add("project_ids", org.ProjectIDs[i*3001])
	}
	for _, c := range []struct{ name, path string }{
		{"list400", "/api/v2/projects?limit=400&cursor=" + org.ProjectIDs[200_000]},
		{"ids100x3h", consumptionURL(false, org.ID, hour.Add(-3*time.Hour), hour, "hourly", v2Metrics, 100, "") + "&" + ids.Encode()},
		{"page100x24h", consumptionURL(false, org.ID, hour.Add(-24*time.Hour), hour, "hourly", v2Metrics, 100, org.ProjectIDs[300_000])},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := s.Handler()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.path, nil))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

// BenchmarkListFleet1M lists all 1,000,000 projects of the fleet-scale model org by org, 400
// a page, through the handler: the first listing sums every project's period so far, the same
// listing an hour later adds one hour per project (the list's counters are kept).
func BenchmarkListFleet1M(b *testing.B) {
	clk := testclock.New(t0)
	s := newSim(b, sim.Config{Projects: 1_000_000, Seed: 1, Now: clk.Now, ActiveShare: 0.1})
	h := s.Handler()
	listAll := func() (pages int) {
		for _, o := range s.Orgs() {
			for k := 0; k < len(o.ProjectIDs); k += 400 {
				path := "/api/v2/projects?limit=400&org_id=" + o.ID
				if k > 0 {
					path += "&cursor=" + o.ProjectIDs[k-1]
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
				}
				pages++
			}
		}
		return pages
	}
	var first, next time.Duration
	pages := 0
	for b.Loop() {
		start := time.Now()
		pages = listAll()
		first = time.Since(start)
		clk.Add(time.Hour)
		start = time.Now()
		listAll()
		next = time.Since(start)
	}
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(first.Seconds(), "first-s")
	b.ReportMetric(next.Seconds(), "hour-later-s")
}
