package collector_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/neon"
)

func TestSweep_ExactIdempotentAndRevisions(t *testing.T) {
	const projects = 10_000
	f := newFleet(t, projects)
	ctx := context.Background()
	for _, plan := range []string{"scale", "legacy"} {
		t.Run(plan, func(t *testing.T) {
			org := f.Org(t, plan)
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
			f.Sim.Revise(2 * time.Hour)
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
	f := newFleet(t, 200)
	org := f.Org(t, "free")
	_, err := f.collector(t, org).Sweep(context.Background(), f.window72h())
	if !errors.Is(err, neon.ErrNoConsumptionHistory) || !strings.Contains(err.Error(), "no consumption history") {
		t.Fatalf("want a 403 'no consumption history' error, got %v", err)
	}
	totals := f.usageTotals(t, org.ID, testNow.Add(-100*time.Hour), testNow)
	if len(totals) != 0 {
		t.Fatalf("a 403 recorded %d usage sums; it must record nothing, not zeros", len(totals))
	}
	hourly := collector.Feed{OrgID: org.ID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
	wm, ok, err := f.store().Watermark(context.Background(), hourly)
	if err != nil || ok {
		t.Fatalf("a failed sweep advanced the watermark to %v (ok=%v, err=%v)", wm, ok, err)
	}
}

func TestSweep_WatermarkAndProvisionalHours(t *testing.T) {
	f := newFleet(t, 300)
	ctx := context.Background()
	org := f.Org(t, "launch")
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
		f.Clock.Add(15 * time.Minute)
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
	f := newFleet(t, 200)
	ctx := context.Background()
	org := f.Org(t, "scale")
	c := f.collector(t, org)
	store := f.store()
	from := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	to := testNow.Truncate(time.Hour)
	res, err := c.Backfill(ctx, from, to, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Segments) != 2 || res.Segments[0].Granularity != collector.GranularityDaily || res.Segments[1].Granularity != collector.GranularityHourly {
		t.Fatalf("segments: %+v", res.Segments)
	}
	hourlyFrom := res.Segments[1].From
	if !res.Segments[0].To.Equal(hourlyFrom) || !res.Segments[0].From.Equal(from) {
		t.Fatalf("segments do not tile [%v, %v): %+v", from, to, res.Segments)
	}
	f.assertExact(t, org, collector.Window{From: hourlyFrom, To: to}, neon.V2Metrics())

	coarse := f.storedCoarse(t, org.ID, from, hourlyFrom)
	checked := 0
	for _, p := range org.ProjectIDs[:20] {
		for _, m := range neon.V2Metrics() {
			for day := from; day.Before(hourlyFrom); day = day.Add(24 * time.Hour) {
				var want int64
				for h := day; h.Before(day.Add(24 * time.Hour)); h = h.Add(time.Hour) {
					want += f.Sim.Value(p, m, h)
				}
				got := coarse[coarseKey{ProjectID: p, Metric: m, Granularity: collector.GranularityDaily, BucketStart: day}]
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
	runs, err := store.Runs(ctx, org.ID, collector.EndpointV2, time.Time{})
	if err != nil || len(runs) != len(res.Segments) {
		t.Fatalf("runs after the backfill: %d, %v; want one per segment", len(runs), err)
	}
	for _, r := range runs {
		if !strings.HasPrefix(r.RunID, "backfill-") {
			t.Errorf("%s run id %q is not a backfill run id", r.Granularity, r.RunID)
		}
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

// recorder is a slog handler that keeps every record, for tests of what is logged.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// A failed sweep returns its error and records it in the run's row, but does not log it: the
// caller handles it, and logs it once.
func TestSweep_FailureIsReturnedAndRecordedNotLogged(t *testing.T) {
	f := newFleet(t, 200)
	org := f.Org(t, "free")
	rec := &recorder{}
	c, err := collector.New(collector.Config{Consumption: f.Client, Store: f.store(), OrgID: org.ID,
		Lookback: 72 * time.Hour, Now: f.Clock.Now, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	sum, sweepErr := c.Sweep(context.Background(), f.window72h())
	if sweepErr == nil || sum.Outcome != collector.OutcomeFailed {
		t.Fatalf("sweep of an org without consumption history: outcome %q, err %v; want a failure", sum.Outcome, sweepErr)
	}
	if !strings.HasPrefix(sum.RunID, "collect-") {
		t.Errorf("run id %q is not a collect run id", sum.RunID)
	}
	for _, r := range rec.records {
		if r.Level >= slog.LevelError {
			t.Errorf("the collector logged %q at level %s; the error is returned, its caller logs it", r.Message, r.Level)
		}
	}
	runs, err := f.store().Runs(context.Background(), org.ID, collector.EndpointV2, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].RunID != sum.RunID || runs[0].Outcome != collector.OutcomeFailed || runs[0].Error != sweepErr.Error() {
		t.Fatalf("runs = %+v; want the failed run with its error %q", runs, sweepErr)
	}
}

func TestNewMetrics_RegistrationErrorIsReturned(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := collector.NewMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	if m, err := collector.NewMetrics(reg, nil); err == nil || m != nil {
		t.Fatalf("registering the series twice = %v, %v; want an error", m, err)
	}
}
