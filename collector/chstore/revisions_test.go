package chstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

func TestRevisions(t *testing.T) {
	t0 := day0()
	rev := func(project string, hour time.Time, oldV, newV, oldVer, newVer uint64, run string) collector.Revision {
		return collector.Revision{OrgID: "org-1", ProjectID: project, Metric: "compute_unit_seconds", Hour: hour,
			OldValue: oldV, NewValue: newV, OldVersion: oldVer, NewVersion: newVer,
			DetectedAt: hour.Add(3 * time.Hour), RunID: run}
	}
	tests := []struct {
		name    string
		batches [][]collector.Revision
		want    []collector.Revision
	}{
		{
			name:    "one",
			batches: [][]collector.Revision{{rev("p1", t0, 10, 20, 1, 2, "run-a")}},
			want:    []collector.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a")},
		},
		{
			name: "re-logged after a crash",
			batches: [][]collector.Revision{
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
			},
			want: []collector.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a")},
		},
		{
			name: "a chain of revisions keeps every step",
			batches: [][]collector.Revision{
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 20, 30, 2, 3, "run-b")},
			},
			want: []collector.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a"), rev("p1", t0, 20, 30, 2, 3, "run-b")},
		},
		{
			name: "ordered by project, hour, version",
			batches: [][]collector.Revision{{
				rev("p2", t0, 1, 2, 1, 2, "run-a"),
				rev("p1", t0.Add(time.Hour), 1, 2, 1, 2, "run-a"),
				rev("p1", t0, 5, 6, 4, 5, "run-a"),
			}},
			want: []collector.Revision{
				rev("p1", t0, 5, 6, 4, 5, "run-a"),
				rev("p1", t0.Add(time.Hour), 1, 2, 1, 2, "run-a"),
				rev("p2", t0, 1, 2, 1, 2, "run-a"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t)
			for _, b := range tt.batches {
				if err := store.InsertRevisions(t.Context(), b); err != nil {
					t.Fatalf("insert revisions: %v", err)
				}
			}
			got, err := store.Revisions(t.Context(), "org-1", t0, t0.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("revisions: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			other, err := store.Revisions(t.Context(), "org-2", t0, t0.Add(24*time.Hour))
			if err != nil || len(other) != 0 {
				t.Fatalf("another org's revisions = %v, %v; want none", other, err)
			}
		})
	}
}

func TestInsertRevisions_Invalid(t *testing.T) {
	store := newTestStore(t)
	err := store.InsertRevisions(t.Context(), []collector.Revision{{OrgID: "org-1", ProjectID: "p1", Metric: "m"}})
	if err == nil {
		t.Fatalf("revision without an hour: want an error")
	}
	if err := store.InsertRevisions(t.Context(), nil); err != nil {
		t.Fatalf("empty insert: %v", err)
	}
}
