package chstore_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

func change(project string, from time.Time, customer, plan string) accounts.Record {
	return accounts.Record{ProjectID: project, ValidFrom: from, CustomerID: customer, Plan: plan,
		Source: accounts.SourceStripe, Basis: "subscription_start", RecordedAt: from.Add(time.Hour), RunID: "run-1", Version: 1}
}

func fact(project, metric string, hour time.Time, value, version uint64) collector.Fact {
	return collector.Fact{OrgID: "org-1", ProjectID: project, Metric: metric, Hour: hour, Value: value,
		PeriodID: "period-1", PeriodPlan: "scale", CollectedAt: hour.Add(2 * time.Hour), Version: version}
}

func TestAt(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	upgrade := day.Add(14 * time.Hour)
	changes := []accounts.Record{
		change("p-a", day.Add(-48*time.Hour), "cus_1", "free"),
		change("p-a", upgrade, "cus_1", "pro"),
		change("p-b", day.Add(10*time.Hour+17*time.Minute), "cus_2", "enterprise"),
		change("p-b", day.Add(20*time.Hour), "cus_2", ""), // cancelled
		change("p-c", day.Add(-time.Hour), "cus_3", "pro"),
	}
	if err := store.Insert(t.Context(), changes); err != nil {
		t.Fatalf("insert: %v", err)
	}
	// Writing a change again replaces it: still one row per (project, valid_from).
	again := changes[1]
	again.Version, again.RunID = 2, "run-2"
	if err := store.Insert(t.Context(), []accounts.Record{again}); err != nil {
		t.Fatalf("insert again: %v", err)
	}

	plansAt := func(ids []string, at time.Time) string {
		t.Helper()
		got, err := store.At(t.Context(), ids, at)
		if err != nil {
			t.Fatalf("accounts at: %v", err)
		}
		var parts []string
		for _, p := range []string{"p-a", "p-b", "p-c"} {
			if c, ok := got[p]; ok {
				parts = append(parts, p+"="+c.CustomerID+"/"+c.Plan)
			}
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name string
		ids  []string
		at   time.Time
		want string
	}{
		{"13:00 has the old plan", nil, day.Add(13 * time.Hour), "p-a=cus_1/free p-b=cus_2/enterprise p-c=cus_3/pro"},
		{"14:00 has the new plan", nil, upgrade, "p-a=cus_1/pro p-b=cus_2/enterprise p-c=cus_3/pro"},
		{"a second before 14:00", nil, upgrade.Add(-time.Second), "p-a=cus_1/free p-b=cus_2/enterprise p-c=cus_3/pro"},
		{"15:00 has the new plan", nil, day.Add(15 * time.Hour), "p-a=cus_1/pro p-b=cus_2/enterprise p-c=cus_3/pro"},
		{"after the cancellation", nil, day.Add(21 * time.Hour), "p-a=cus_1/pro p-b=cus_2/ p-c=cus_3/pro"},
		{"before anything", nil, day.Add(-72 * time.Hour), ""},
		{"before p-b existed", nil, day, "p-a=cus_1/free p-c=cus_3/pro"},
		{"only some projects", []string{"p-b", "p-x"}, day.Add(11 * time.Hour), "p-b=cus_2/enterprise"},
		{"no projects", []string{}, day.Add(11 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plansAt(tt.ids, tt.at); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	got, err := store.At(t.Context(), []string{"p-a"}, day.Add(15*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := again; !reflect.DeepEqual(got["p-a"], want) {
		t.Fatalf("full row = %+v\nwant       %+v", got["p-a"], want)
	}
}

func TestHistory(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var changes []accounts.Record
	// More projects than one IN list holds, so the chunked reads are exercised.
	for i := range 2500 {
		p := fmt.Sprintf("p-%04d", i)
		changes = append(changes, change(p, base.Add(time.Duration(i)*time.Second), fmt.Sprintf("cus_%d", i/2), "free"))
		if i%3 == 0 {
			changes = append(changes, change(p, base.Add(30*time.Hour), fmt.Sprintf("cus_%d", i/2), "pro"))
		}
	}
	if err := store.Insert(t.Context(), changes); err != nil {
		t.Fatalf("insert: %v", err)
	}
	all, err := store.History(t.Context(), nil, base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(changes) {
		t.Fatalf("history has %d rows, want %d", len(all), len(changes))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.ProjectID > b.ProjectID || (a.ProjectID == b.ProjectID && !a.ValidFrom.Before(b.ValidFrom)) {
			t.Fatalf("rows %d and %d out of order: %+v %+v", i-1, i, a, b)
		}
	}
	var ids []string
	for i := 0; i < 2500; i += 2 {
		ids = append(ids, fmt.Sprintf("p-%04d", i))
	}
	some, err := store.History(t.Context(), ids, base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 1250 {
		t.Fatalf("history of 1250 projects before the upgrades has %d rows", len(some))
	}
	at, err := store.At(t.Context(), ids, base.Add(31*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(at) != 1250 || at["p-0000"].Plan != "pro" || at["p-0002"].Plan != "free" {
		t.Fatalf("accounts at: %d projects, p-0000 %+v, p-0002 %+v", len(at), at["p-0000"], at["p-0002"])
	}
}

func TestInsert_Invalid(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	ok := change("p", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "cus", "pro")
	for name, c := range map[string]accounts.Record{
		"no project": func() accounts.Record { c := ok; c.ProjectID = ""; return c }(),
		"bad source": func() accounts.Record { c := ok; c.Source = "manual"; return c }(),
		"no time":    func() accounts.Record { c := ok; c.ValidFrom = time.Time{}; return c }(),
	} {
		if err := store.Insert(t.Context(), []accounts.Record{ok, c}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".account_history"); n != 0 {
		t.Fatalf("account_history has %d rows after refused writes", n)
	}
}

func TestUsageProjects(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	facts := []collector.Fact{fact("p2", "compute_unit_seconds", h, 1, 1), fact("p1", "compute_unit_seconds", h, 1, 1),
		fact("p1", "root_branch_bytes_month", h.Add(time.Hour), 1, 1), fact("p3", "compute_unit_seconds", h.Add(-48*time.Hour), 1, 1)}
	if err := collectorstore.New(conn, db).InsertFacts(t.Context(), facts); err != nil {
		t.Fatal(err)
	}
	got, err := store.UsageProjects(t.Context(), h.Add(-time.Hour), h.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"p1", "p2"}) {
		t.Fatalf("usage projects = %v", got)
	}
}
