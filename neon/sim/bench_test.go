package sim_test

import (
	"net/http"
	"net/http/httptest"
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
