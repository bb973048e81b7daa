package chstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

func startRun(id string, started time.Time) collector.Run {
	return collector.Run{RunID: id, OrgID: "org-1", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
		WindowFrom: started.Add(-48 * time.Hour).Truncate(time.Hour), WindowTo: started.Truncate(time.Hour),
		StartedAt: started, Outcome: collector.OutcomeRunning}
}

func finishRun(r collector.Run, outcome collector.Outcome, took time.Duration) collector.Run {
	r.FinishedAt = r.StartedAt.Add(took)
	r.DurationSeconds = took.Seconds()
	r.Pages, r.Projects, r.ValuesFetched, r.RowsWritten, r.Revisions, r.Retries, r.Errors = 3, 250, 48000, 47000, 12, 2, 1
	r.Outcome = outcome
	if outcome == collector.OutcomeFailed {
		r.Error = "fetch page 3: 503"
	}
	return r
}

func TestRuns(t *testing.T) {
	store := newTestStore(t)
	base := time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)
	a := startRun("run-a", base)
	b := startRun("run-b", base.Add(time.Hour))
	c := startRun("run-c", base.Add(2*time.Hour))
	old := startRun("run-old", base.Add(-24*time.Hour))
	aDone := finishRun(a, collector.OutcomeSuccess, 95*time.Second)
	bDone := finishRun(b, collector.OutcomeFailed, 30*time.Second)
	for _, r := range []collector.Run{old, a, b, aDone, bDone, c} {
		if err := store.WriteRun(t.Context(), r); err != nil {
			t.Fatalf("write run %s: %v", r.RunID, err)
		}
	}
	// A final row written twice (a retried write) still leaves one run.
	if err := store.WriteRun(t.Context(), aDone); err != nil {
		t.Fatalf("write run again: %v", err)
	}

	tests := []struct {
		name  string
		since time.Time
		want  []collector.Run
	}{
		{"since the first", base, []collector.Run{aDone, bDone, c}},
		{"since the last", c.StartedAt, []collector.Run{c}},
		{"everything", time.Time{}, []collector.Run{old, aDone, bDone, c}},
		{"future", base.Add(24 * time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.Runs(t.Context(), "org-1", collector.EndpointV2, tt.since)
			if err != nil {
				t.Fatalf("runs: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	// A still-running run reads back with a zero finish time.
	got, err := store.Runs(t.Context(), "org-1", collector.EndpointV2, c.StartedAt)
	if err != nil || len(got) != 1 || !got[0].FinishedAt.IsZero() || got[0].Outcome != collector.OutcomeRunning {
		t.Fatalf("running run = %+v, %v", got, err)
	}
}

func TestWriteRun_Invalid(t *testing.T) {
	store := newTestStore(t)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// A run is written alone.
	write := func(ctx context.Context, runs []collector.Run) error { return store.WriteRun(ctx, runs[0]) }
	assertRefused(t, store, "collection_runs", write, startRun("x", base), nil, []refusal[collector.Run]{
		{"no id", func(r *collector.Run) { r.RunID = "" }, "empty run id"},
		{"unknown endpoint", func(r *collector.Run) { r.Endpoint = "v3" }, "endpoint"},
		{"unknown granularity", func(r *collector.Run) { r.Granularity = "weekly" }, "granularity"},
		{"unknown outcome", func(r *collector.Run) { r.Outcome = "done" }, "outcome"},
		{"running with a finish", func(r *collector.Run) { r.FinishedAt = base }, "running run"},
		{"finished without a finish", func(r *collector.Run) { r.Outcome = collector.OutcomeSuccess }, "finish time"},
	})
}
