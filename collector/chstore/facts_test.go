package chstore_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/schema"
)

// day0 is the first hour of the tests' sample data.
func day0() time.Time { return time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC) }

func fact(project, metric string, hour time.Time, value, version uint64) collector.Fact {
	return collector.Fact{OrgID: "org-1", ProjectID: project, Metric: metric, Hour: hour, Value: value,
		PeriodID: "period-1", PeriodPlan: "scale", CollectedAt: hour.Add(2 * time.Hour), Version: version}
}

func (s testStore) insertFacts(t *testing.T, facts ...collector.Fact) {
	t.Helper()
	if err := s.InsertFacts(t.Context(), facts); err != nil {
		t.Fatalf("insert facts: %v", err)
	}
}

// hourlyRow is a row of the usage_hourly view.
type hourlyRow struct {
	Project, Metric string
	Hour            time.Time
	Value           uint64
	PeriodID, Plan  string
	CollectedAt     time.Time
}

func (s testStore) hourlyRows(t *testing.T) []hourlyRow {
	t.Helper()
	q := schema.Query{Name: "test.hourly_rows", Kind: schema.KindSelect,
		SQL: "SELECT project_id, metric, hour, value, period_id, period_plan, collected_at FROM {db}.usage_hourly ORDER BY project_id, metric, hour"}
	out, err := schema.All(t.Context(), q, s.Conn, s.DB, func(row schema.Row) (hourlyRow, error) {
		var r hourlyRow
		err := row.Scan(&r.Project, &r.Metric, &r.Hour, &r.Value, &r.PeriodID, &r.Plan, &r.CollectedAt)
		r.Hour, r.CollectedAt = r.Hour.UTC(), r.CollectedAt.UTC()
		return r, err
	})
	if err != nil {
		t.Fatalf("read usage_hourly: %v", err)
	}
	return out
}

// TestInsertFacts_Replace checks that facts of one key replace each other, highest version
// first, whatever the order and batching of inserts; the view shows one row per key and sums
// never add replaced values.
func TestInsertFacts_Replace(t *testing.T) {
	t0 := day0()
	h1 := t0.Add(time.Hour)
	tests := []struct {
		name    string
		batches [][]collector.Fact
		want    map[FactKey]chstore.StoredFact
	}{
		{
			name:    "single",
			batches: [][]collector.Fact{{fact("p1", "compute_unit_seconds", t0, 10, 1)}},
			want:    map[FactKey]chstore.StoredFact{{"p1", "compute_unit_seconds", t0}: {10, 1}},
		},
		{
			name: "revision in a later insert",
			batches: [][]collector.Fact{
				{fact("p1", "compute_unit_seconds", t0, 10, 1)},
				{fact("p1", "compute_unit_seconds", t0, 25, 2)},
			},
			want: map[FactKey]chstore.StoredFact{{"p1", "compute_unit_seconds", t0}: {25, 2}},
		},
		{
			name: "older version arriving late loses",
			batches: [][]collector.Fact{
				{fact("p1", "compute_unit_seconds", t0, 25, 7)},
				{fact("p1", "compute_unit_seconds", t0, 10, 3)},
			},
			want: map[FactKey]chstore.StoredFact{{"p1", "compute_unit_seconds", t0}: {25, 7}},
		},
		{
			name: "identical re-collection",
			batches: [][]collector.Fact{
				{fact("p1", "compute_unit_seconds", t0, 10, 1)},
				{fact("p1", "compute_unit_seconds", t0, 10, 1)},
				{fact("p1", "compute_unit_seconds", t0, 10, 1)},
			},
			want: map[FactKey]chstore.StoredFact{{"p1", "compute_unit_seconds", t0}: {10, 1}},
		},
		{
			name: "versions in one batch and other keys untouched",
			batches: [][]collector.Fact{{
				fact("p1", "compute_unit_seconds", t0, 10, 1),
				fact("p1", "compute_unit_seconds", t0, 30, 3),
				fact("p1", "compute_unit_seconds", t0, 20, 2),
				fact("p1", "compute_unit_seconds", h1, 5, 1),
				fact("p1", "root_branch_bytes_month", t0, 1<<40, 1),
				fact("p2", "compute_unit_seconds", t0, 7, 1),
			}},
			want: map[FactKey]chstore.StoredFact{
				{"p1", "compute_unit_seconds", t0}:    {30, 3},
				{"p1", "compute_unit_seconds", h1}:    {5, 1},
				{"p1", "root_branch_bytes_month", t0}: {1 << 40, 1},
				{"p2", "compute_unit_seconds", t0}:    {7, 1},
			},
		},
		{
			name: "value revised to zero",
			batches: [][]collector.Fact{
				{fact("p1", "public_network_transfer_bytes", t0, 1414, 1)},
				{fact("p1", "public_network_transfer_bytes", t0, 0, 2)},
			},
			want: map[FactKey]chstore.StoredFact{{"p1", "public_network_transfer_bytes", t0}: {0, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t)
			for _, b := range tt.batches {
				store.insertFacts(t, b...)
			}
			got, err := store.storedFacts(t.Context(), "org-1", []string{"p1", "p2"}, t0, t0.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("stored facts: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stored facts = %v, want %v", got, tt.want)
			}

			// The view: one row per key carrying the winning value, and sums of winners only.
			rows := store.hourlyRows(t)
			if len(rows) != len(tt.want) {
				t.Fatalf("usage_hourly has %d rows, want %d: %+v", len(rows), len(tt.want), rows)
			}
			wantTotals := map[[2]string]uint64{}
			for _, r := range rows {
				w, ok := tt.want[FactKey{ProjectID: r.Project, Metric: r.Metric, Hour: r.Hour}]
				if !ok || w.Value != r.Value {
					t.Fatalf("usage_hourly row %+v, want value %d", r, w.Value)
				}
				if r.PeriodID != "period-1" || r.Plan != "scale" || !r.CollectedAt.Equal(r.Hour.Add(2*time.Hour)) {
					t.Fatalf("usage_hourly row %+v: period, plan or collected_at lost", r)
				}
			}
			for k, w := range tt.want {
				wantTotals[[2]string{k.ProjectID, k.Metric}] += w.Value
			}
			if totals := store.UsageTotals(t, "org-1", t0, t0.Add(24*time.Hour)); !reflect.DeepEqual(totals, wantTotals) {
				t.Fatalf("usage totals = %v, want %v", totals, wantTotals)
			}
		})
	}
}

func TestStoredFacts_Filters(t *testing.T) {
	t0 := day0()
	store := newTestStore(t)
	to := t0.Add(3 * time.Hour)
	store.insertFacts(t,
		fact("p1", "m", t0.Add(-time.Hour), 1, 1), // before from
		fact("p1", "m", t0, 2, 1),                 // at from: in
		fact("p1", "m", to.Add(-time.Hour), 3, 1), // last hour: in
		fact("p1", "m", to, 4, 1),                 // at to: out
		fact("p2", "m", t0, 5, 1),
		fact("p3", "m", t0, 6, 1), // not asked for
	)
	other := fact("p1", "m", t0, 99, 9)
	other.OrgID = "org-2"
	store.insertFacts(t, other)

	tests := []struct {
		name     string
		org      string
		projects []string
		want     map[FactKey]chstore.StoredFact
	}{
		{"range and projects", "org-1", []string{"p1", "p2"}, map[FactKey]chstore.StoredFact{
			{"p1", "m", t0}:                 {2, 1},
			{"p1", "m", to.Add(-time.Hour)}: {3, 1},
			{"p2", "m", t0}:                 {5, 1},
		}},
		{"other org", "org-2", []string{"p1"}, map[FactKey]chstore.StoredFact{{"p1", "m", t0}: {99, 9}}},
		{"no projects", "org-1", nil, map[FactKey]chstore.StoredFact{}},
		{"unknown project", "org-1", []string{"nope"}, map[FactKey]chstore.StoredFact{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.storedFacts(t.Context(), tt.org, tt.projects, t0, to)
			if err != nil {
				t.Fatalf("stored facts: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// More project ids than fit one IN list are read in chunks and merged.
func TestStoredFacts_ManyProjects(t *testing.T) {
	t0 := day0()
	store := newTestStore(t)
	const n = 2500
	ids := make([]string, n)
	var facts []collector.Fact
	for i := range ids {
		ids[i] = fmt.Sprintf("project-%04d", i)
		if i%500 == 499 || i == 0 {
			facts = append(facts, fact(ids[i], "m", t0, uint64(i), 1))
		}
	}
	store.insertFacts(t, facts...)
	got, err := store.storedFacts(t.Context(), "org-1", ids, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("stored facts: %v", err)
	}
	if len(got) != len(facts) {
		t.Fatalf("got %d facts, want %d", len(got), len(facts))
	}
	for _, f := range facts {
		if got[FactKey{ProjectID: f.ProjectID, Metric: "m", Hour: t0}].Value != f.Value {
			t.Fatalf("fact of %s missing or wrong: %v", f.ProjectID, got)
		}
	}
}

func TestInsertFacts_Invalid(t *testing.T) {
	t0 := day0()
	store := newTestStore(t)
	good := fact("p1", "m", t0, 1, 1)
	// A batch with a bad fact writes nothing at all.
	assertRefused(t, store, "usage_facts", store.InsertFacts, good, []collector.Fact{good}, []refusal[collector.Fact]{
		{"hour not on the hour", func(f *collector.Fact) { f.Hour = t0.Add(30 * time.Minute) }, "not the start of an hour"},
		{"zero hour", func(f *collector.Fact) { f.Hour = time.Time{} }, "not the start of an hour"},
		{"no metric", func(f *collector.Fact) { f.Metric = "" }, "empty"},
		{"no org", func(f *collector.Fact) { f.OrgID = "" }, "empty"},
	})
	if err := store.InsertFacts(t.Context(), nil); err != nil {
		t.Fatalf("empty insert: %v", err)
	}
	if err := chstore.New(store.Conn, "bad-db").InsertFacts(t.Context(), []collector.Fact{good}); err == nil {
		t.Fatalf("insert into an invalid database name: want an error")
	}
}

func TestUsageTotals(t *testing.T) {
	t0 := day0()
	store := newTestStore(t)
	var facts []collector.Fact
	for h := range 48 {
		hour := t0.Add(time.Duration(h) * time.Hour)
		facts = append(facts,
			fact("p1", "compute_unit_seconds", hour, 3600, 1),
			fact("p1", "compute_unit_seconds", hour, 1800, 2), // revision wins
			fact("p2", "public_network_transfer_bytes", hour, uint64(h), 1),
		)
	}
	stranger := fact("p1", "compute_unit_seconds", t0, 1e9, 5)
	stranger.OrgID = "org-other"
	facts = append(facts, stranger)
	store.insertFacts(t, facts...)

	tests := []struct {
		name     string
		from, to time.Time
		want     map[[2]string]uint64
	}{
		{"first day", t0, t0.Add(24 * time.Hour), map[[2]string]uint64{
			{"p1", "compute_unit_seconds"}:          24 * 1800,
			{"p2", "public_network_transfer_bytes"}: 23 * 24 / 2,
		}},
		{"both days", t0, t0.Add(48 * time.Hour), map[[2]string]uint64{
			{"p1", "compute_unit_seconds"}:          48 * 1800,
			{"p2", "public_network_transfer_bytes"}: 47 * 48 / 2,
		}},
		{"empty range", t0.Add(-24 * time.Hour), t0, map[[2]string]uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.UsageTotals(t, "org-1", tt.from, tt.to); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// FactKey identifies an hourly fact within one organization, for tests.
type FactKey struct {
	ProjectID string
	Metric    string
	Hour      time.Time
}

// storedFacts reads the latest stored value of every fact of these projects in [from, to) the
// way the collector does: every version through the read behind LoadStored, the highest kept.
func (s testStore) storedFacts(ctx context.Context, orgID string, projectIDs []string, from, to time.Time) (map[FactKey]chstore.StoredFact, error) {
	ms := append(metrics(), "m")
	out := map[FactKey]chstore.StoredFact{}
	versions := map[FactKey]uint64{}
	err := s.ScanStoredFacts(ctx, orgID, projectIDs, ms, from, to, func(v chstore.StoredValue) {
		k := FactKey{ProjectID: projectIDs[v.Project], Metric: ms[v.Metric], Hour: time.Unix(v.Hour, 0).UTC()}
		if old, ok := versions[k]; !ok || v.Version > old {
			versions[k] = v.Version
			out[k] = chstore.StoredFact{Value: v.Value, Version: v.Version}
		}
	})
	return out, err
}
