package schema_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestRevisions(t *testing.T) {
	t0 := day0()
	rev := func(project string, hour time.Time, oldV, newV, oldVer, newVer uint64, run string) schema.Revision {
		return schema.Revision{OrgID: "org-1", ProjectID: project, Metric: "compute_unit_seconds", Hour: hour,
			OldValue: oldV, NewValue: newV, OldVersion: oldVer, NewVersion: newVer,
			DetectedAt: hour.Add(3 * time.Hour), RunID: run}
	}
	tests := []struct {
		name    string
		batches [][]schema.Revision
		want    []schema.Revision
	}{
		{
			name:    "one",
			batches: [][]schema.Revision{{rev("p1", t0, 10, 20, 1, 2, "run-a")}},
			want:    []schema.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a")},
		},
		{
			name: "re-logged after a crash",
			batches: [][]schema.Revision{
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
			},
			want: []schema.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a")},
		},
		{
			name: "a chain of revisions keeps every step",
			batches: [][]schema.Revision{
				{rev("p1", t0, 10, 20, 1, 2, "run-a")},
				{rev("p1", t0, 20, 30, 2, 3, "run-b")},
			},
			want: []schema.Revision{rev("p1", t0, 10, 20, 1, 2, "run-a"), rev("p1", t0, 20, 30, 2, 3, "run-b")},
		},
		{
			name: "ordered by project, hour, version",
			batches: [][]schema.Revision{{
				rev("p2", t0, 1, 2, 1, 2, "run-a"),
				rev("p1", t0.Add(time.Hour), 1, 2, 1, 2, "run-a"),
				rev("p1", t0, 5, 6, 4, 5, "run-a"),
			}},
			want: []schema.Revision{
				rev("p1", t0, 5, 6, 4, 5, "run-a"),
				rev("p1", t0.Add(time.Hour), 1, 2, 1, 2, "run-a"),
				rev("p2", t0, 1, 2, 1, 2, "run-a"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, db := chtest.New(t)
			for _, b := range tt.batches {
				if err := schema.InsertRevisions(t.Context(), conn, db, b); err != nil {
					t.Fatalf("insert revisions: %v", err)
				}
			}
			got, err := schema.Revisions(t.Context(), conn, db, "org-1", t0, t0.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("revisions: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			other, err := schema.Revisions(t.Context(), conn, db, "org-2", t0, t0.Add(24*time.Hour))
			if err != nil || len(other) != 0 {
				t.Fatalf("another org's revisions = %v, %v; want none", other, err)
			}
		})
	}
}

func TestInsertRevisions_Invalid(t *testing.T) {
	conn, db := chtest.New(t)
	err := schema.InsertRevisions(t.Context(), conn, db, []schema.Revision{{OrgID: "org-1", ProjectID: "p1", Metric: "m"}})
	if err == nil {
		t.Fatalf("revision without an hour: want an error")
	}
	if err := schema.InsertRevisions(t.Context(), conn, db, nil); err != nil {
		t.Fatalf("empty insert: %v", err)
	}
}
