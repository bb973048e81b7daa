package collector_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// clock is a settable clock shared by the simulator and the collector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a simulator on real HTTP, a client and a migrated ClickHouse database.
type fixture struct {
	clock  *clock
	sim    *sim.Sim
	url    string
	client *neon.Client
	conn   driver.Conn
	db     string
}

// testNow is mid-hour so the provisional window and revisions are exercised.
var testNow = time.Date(2026, 11, 27, 12, 40, 0, 0, time.UTC)

func newFixture(t *testing.T, projects int) *fixture {
	t.Helper()
	clk := &clock{t: testNow}
	s, err := sim.New(sim.Config{Projects: projects, Seed: 7, Now: clk.Now, APIKey: "test-key"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	url := srv.URL + "/api/v2"
	client, err := neon.NewClient(neon.Config{
		BaseURL: url, APIKey: "test-key", ConsumptionRatePerMin: 1e6, ConsumptionBurst: 100,
		GeneralRatePerMin: 1e6, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxRetries: 30, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, db := chtest.New(t)
	t.Cleanup(func() {
		if w := s.Stats().Wakes; w != 0 {
			t.Errorf("the simulator counted %d wakes of idle computes; collection must wake none", w)
		}
	})
	return &fixture{clock: clk, sim: s, url: url, client: client, conn: conn, db: db}
}

func (f *fixture) org(t *testing.T, plan string) sim.Org {
	t.Helper()
	for _, o := range f.sim.Orgs() {
		if o.Plan == plan || (plan == "legacy" && o.Legacy) {
			return o
		}
	}
	t.Fatalf("simulator has no %s org", plan)
	return sim.Org{}
}

func (f *fixture) collector(t *testing.T, org sim.Org) *collector.Collector {
	t.Helper()
	ep := collector.EndpointV2
	if org.Legacy {
		ep = collector.EndpointLegacy
	}
	c, err := collector.New(collector.Config{
		Source: f.client, Store: collector.NewClickHouseStore(f.conn, f.db), OrgID: org.ID, Endpoint: ep,
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.clock.Now, FlushRows: 20_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// window72h is the 72 complete hours before the clock.
func (f *fixture) window72h() collector.Window {
	to := f.clock.Now().Truncate(time.Hour)
	return collector.Window{From: to.Add(-72 * time.Hour), To: to}
}

// truth returns the simulator's ground truth of every (project, metric, hour) of an org.
func (f *fixture) truth(org sim.Org, w collector.Window, metrics []string) map[string]int64 {
	out := map[string]int64{}
	for _, p := range org.ProjectIDs {
		for _, m := range metrics {
			for h := w.From; h.Before(w.To); h = h.Add(time.Hour) {
				out[p+"/"+m+"/"+h.Format(time.RFC3339)] = f.sim.Value(p, m, h)
			}
		}
	}
	return out
}

// assertExact compares, for every project of the org and every metric, the sum of usage_hourly
// over the window with the simulator's ground truth, and every single hour for a sample.
func (f *fixture) assertExact(t *testing.T, org sim.Org, w collector.Window, metrics []string) {
	t.Helper()
	totals, err := schema.UsageTotals(context.Background(), f.conn, f.db, org.ID, w.From, w.To)
	if err != nil {
		t.Fatal(err)
	}
	mismatches := 0
	var nonzero int
	for _, p := range org.ProjectIDs {
		for _, m := range metrics {
			var want uint64
			for h := w.From; h.Before(w.To); h = h.Add(time.Hour) {
				want += uint64(f.sim.Value(p, m, h))
			}
			got := totals[[2]string{p, m}]
			if got != want {
				if mismatches < 10 {
					t.Errorf("project %s metric %s: usage_hourly sum %d, ground truth %d", p, m, got, want)
				}
				mismatches++
			}
			if want > 0 {
				nonzero++
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d (project, metric) sums differ from ground truth", mismatches)
	}
	if nonzero == 0 {
		t.Fatalf("ground truth is all zero: the comparison proves nothing")
	}
}

func TestSweep_ExactIdempotentAndRevisions(t *testing.T) {
	const projects = 10_000
	f := newFixture(t, projects)
	ctx := context.Background()
	for _, plan := range []string{"scale", "legacy"} {
		t.Run(plan, func(t *testing.T) {
			org := f.org(t, plan)
			metrics := neon.V2Metrics()
			if org.Legacy {
				metrics = neon.LegacyMetrics()
			}
			c := f.collector(t, org)
			w := f.window72h()

			first, err := c.Sweep(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			if first.Projects != len(org.ProjectIDs) || first.RowsWritten == 0 {
				t.Fatalf("first sweep saw %d projects (want %d) and wrote %d rows", first.Projects, len(org.ProjectIDs), first.RowsWritten)
			}
			if want := int64((len(org.ProjectIDs) + 99) / 100); first.APIRequests != want+first.Retries {
				t.Errorf("first sweep made %d API requests, want ⌈N/100⌉ = %d plus %d retries", first.APIRequests, want, first.Retries)
			}
			t.Logf("first sweep: %d values, %d rows in %v", first.ValuesFetched, first.RowsWritten, first.Duration)
			f.assertExact(t, org, w, metrics)

			second, err := c.Sweep(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			if second.RowsWritten != 0 || second.Revisions != 0 {
				t.Fatalf("re-run of the same window wrote %d rows and %d revisions, want 0", second.RowsWritten, second.Revisions)
			}

			before := f.truth(org, w, metrics)
			f.sim.Revise(2 * time.Hour)
			after := f.truth(org, w, metrics)
			changed := 0
			for k, v := range after {
				if before[k] != v {
					changed++
				}
			}
			if changed == 0 {
				t.Fatal("simulator revised nothing in this org: the revision test proves nothing")
			}
			third, err := c.Sweep(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("revised %d values: third sweep wrote %d rows (%d revisions) of %d values fetched", changed, third.RowsWritten, third.Revisions, third.ValuesFetched)
			if third.RowsWritten != int64(changed) {
				t.Errorf("after revising %d values the sweep wrote %d rows, want exactly those", changed, third.RowsWritten)
			}
			if third.Revisions == 0 || third.Revisions > third.RowsWritten {
				t.Errorf("revisions logged %d, rows written %d", third.Revisions, third.RowsWritten)
			}
			f.assertExact(t, org, w, metrics)
		})
	}
}

func TestSweep_NoConsumptionHistoryRecordsNothing(t *testing.T) {
	f := newFixture(t, 200)
	org := f.org(t, "free")
	_, err := f.collector(t, org).Sweep(context.Background(), f.window72h())
	if !errors.Is(err, neon.ErrNoConsumptionHistory) || !strings.Contains(err.Error(), "no consumption history") {
		t.Fatalf("want a 403 'no consumption history' error, got %v", err)
	}
	totals, err := schema.UsageTotals(context.Background(), f.conn, f.db, org.ID, testNow.Add(-100*time.Hour), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 0 {
		t.Fatalf("a 403 recorded %d usage sums; it must record nothing, not zeros", len(totals))
	}
	wm, ok, err := schema.Watermark(context.Background(), f.conn, f.db, org.ID, "v2", "hourly")
	if err != nil || ok {
		t.Fatalf("a failed sweep advanced the watermark to %v (ok=%v, err=%v)", wm, ok, err)
	}
}

func TestSweep_WatermarkAndProvisionalHours(t *testing.T) {
	f := newFixture(t, 300)
	ctx := context.Background()
	org := f.org(t, "launch")
	c := f.collector(t, org)
	sum, err := c.Sweep(ctx, collector.Window{})
	if err != nil {
		t.Fatal(err)
	}
	wantTo := testNow.Truncate(time.Hour)
	if !sum.To.Equal(wantTo) || !sum.Watermark.Equal(wantTo) || !sum.From.Equal(wantTo.Add(-72*time.Hour)) {
		t.Fatalf("first sweep window %v..%v watermark %v; want 72h up to %v", sum.From, sum.To, sum.Watermark, wantTo)
	}
	// An hour later Neon has refreshed the provisional hours: the next sweep starts from the
	// watermark minus the lookback and picks up the final values.
	for i := 0; i < 4; i++ {
		f.clock.Add(15 * time.Minute)
	}
	next, err := c.Sweep(ctx, collector.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if !next.From.Equal(wantTo.Add(-72*time.Hour)) || !next.To.Equal(wantTo.Add(time.Hour)) {
		t.Fatalf("second sweep window %v..%v", next.From, next.To)
	}
	if next.RowsWritten == 0 {
		t.Fatalf("an hour later the sweep wrote nothing; the new hour and refreshed provisional hours must be written")
	}
	f.assertExact(t, org, collector.Window{From: next.From, To: next.To}, neon.V2Metrics())
}

// TestBackfill_DailyAndHourlyExactAndIdempotent backfills 17 days: daily buckets beyond the
// hourly window go to usage_coarse, the rest to hourly facts; both equal ground truth and a
// re-run writes nothing.
func TestBackfill_DailyAndHourlyExactAndIdempotent(t *testing.T) {
	f := newFixture(t, 200)
	ctx := context.Background()
	org := f.org(t, "scale")
	c := f.collector(t, org)
	store := collector.NewClickHouseStore(f.conn, f.db)
	from := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	to := testNow.Truncate(time.Hour)
	res, err := c.Backfill(ctx, from, to, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Segments) != 2 || res.Segments[0].Granularity != neon.GranularityDaily || res.Segments[1].Granularity != neon.GranularityHourly {
		t.Fatalf("segments: %+v", res.Segments)
	}
	hourlyFrom := res.Segments[1].From
	if !res.Segments[0].To.Equal(hourlyFrom) || !res.Segments[0].From.Equal(from) {
		t.Fatalf("segments do not tile [%v, %v): %+v", from, to, res.Segments)
	}
	f.assertExact(t, org, collector.Window{From: hourlyFrom, To: to}, neon.V2Metrics())

	coarse, err := schema.StoredCoarseFacts(ctx, f.conn, f.db, org.ID, org.ProjectIDs, from, hourlyFrom)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range org.ProjectIDs[:20] {
		for _, m := range neon.V2Metrics() {
			for day := from; day.Before(hourlyFrom); day = day.Add(24 * time.Hour) {
				var want int64
				for h := day; h.Before(day.Add(24 * time.Hour)); h = h.Add(time.Hour) {
					want += f.sim.Value(p, m, h)
				}
				got := coarse[schema.CoarseKey{ProjectID: p, Metric: m, Granularity: "daily", BucketStart: day}]
				if int64(got.Value) != want {
					t.Fatalf("%s %s %s: daily value %d, ground truth %d", p, m, day.Format(time.DateOnly), got.Value, want)
				}
				checked++
			}
		}
	}
	if checked == 0 || len(coarse) == 0 {
		t.Fatal("no daily values were checked")
	}
	again, err := c.Backfill(ctx, from, to, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range again.Segments {
		if s.Summary.RowsWritten != 0 {
			t.Errorf("re-run of the %s segment wrote %d rows, want 0", s.Granularity, s.Summary.RowsWritten)
		}
	}
}
