package accounts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

func TestImport(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	cat := catalog(t)
	now := h(40)
	file := "project_id,customer_id,plan,valid_from\n" +
		"p-a,cus_1,free,2026-03-01T00:00:00Z\n" +
		"p-a,cus_1,pro,2026-03-02T14:00:00Z\n" +
		"p-b,cus_2,enterprise,2026-03-02T14:20:07Z\n" +
		"p-c,cus_3,,2026-03-01\n"
	rows := parseCSV(t, "map.csv", file, cat, now)
	res, err := accounts.Import(t.Context(), store, rows, now, false, nil)
	if err != nil || len(res.Changes) != 4 {
		t.Fatalf("import: %d changes, %v", len(res.Changes), err)
	}
	again, err := accounts.Import(t.Context(), store, rows, now.Add(time.Hour), false, nil)
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("re-import wrote %d changes, %v", len(again.Changes), err)
	}
	if n := rowCount(t, conn, db); n != 4 {
		t.Fatalf("%d rows", n)
	}
	// A correction of one row replaces it; the rest is unchanged.
	fix := parseCSV(t, "fix.csv", "project_id,customer_id,plan,valid_from\np-b,cus_2,pro,2026-03-02T14:20:07Z\n", cat, now)
	if res, err := accounts.Import(t.Context(), store, fix, now.Add(2*time.Hour), false, nil); err != nil || len(res.Changes) != 1 {
		t.Fatalf("correction: %+v %v", res, err)
	}

	tl, err := accounts.LoadTimelines(t.Context(), store, []string{"p-a", "p-b", "p-c"}, accounts.EndOfTime(), "free")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		project string
		at      time.Time
		plan    string
		source  accounts.Source
	}{
		{"p-a", h(13), "free", accounts.SourceCSV},
		{"p-a", h(14), "pro", accounts.SourceCSV},
		{"p-b", h(14), "free", ""}, // nothing recorded yet: the default
		{"p-b", h(15), "pro", accounts.SourceCSV},
		{"p-c", h(15), "free", accounts.SourceCSV}, // a customer without a plan
	} {
		if got := tl.At(tc.project, tc.at); got.Plan != tc.plan {
			t.Errorf("%s at %s: %+v, want plan %s", tc.project, tc.at.Format(time.RFC3339), got, tc.plan)
		}
	}
	if got := tl.History("p-b"); len(got) != 1 || got[0].Basis != accounts.BasisImported || got[0].Source != accounts.SourceCSV {
		t.Fatalf("p-b history %+v", got)
	}

	// The plan in force at one instant for every project, with unowned projects from usage.
	as, err := accounts.AssignmentsAt(t.Context(), store, h(15), []string{"p-a", "p-zzz"}, "free")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.ProjectID+"="+a.CustomerID+"/"+a.Plan)
	}
	if strings.Join(got, " ") != "p-a=cus_1/pro p-b=cus_2/pro p-c=cus_3/free p-zzz=/free" {
		t.Fatalf("assignments: %v", got)
	}
	if err := collectorstore.New(conn, db).InsertFacts(t.Context(), []collector.Fact{
		{OrgID: "o", ProjectID: "p-a", Metric: "compute_unit_seconds", Hour: h(20), Value: 1, Version: 1},
		{OrgID: "o", ProjectID: "p-zzz", Metric: "compute_unit_seconds", Hour: h(20), Value: 1, Version: 1},
	}); err != nil {
		t.Fatal(err)
	}
	un, err := accounts.Unmapped(t.Context(), store, h(0), h(24), accounts.EndOfTime())
	if err != nil || strings.Join(un, ",") != "p-zzz" {
		t.Fatalf("unmapped %v, %v", un, err)
	}
}
