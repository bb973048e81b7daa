package accounts_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
)

func TestParseCSV(t *testing.T) {
	cat := catalog(t)
	now := h(30)
	good := "# exported from the CRM\nproject_id,valid_from,customer_id,plan\n" +
		"p-a,2026-03-01T00:00:00Z,cus_1,free\n" +
		"p-a,2026-03-02T14:00:00Z,cus_1,pro\n" +
		"p-b,2026-03-02,cus_2,\n" +
		"p-c,,,\n"
	rows := parseCSV(t, "map.csv", good, cat, now)
	want := []accounts.Row{
		{Line: 3, ProjectID: "p-a", CustomerID: "cus_1", Plan: "free", ValidFrom: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{Line: 4, ProjectID: "p-a", CustomerID: "cus_1", Plan: "pro", ValidFrom: h(14)},
		{Line: 5, ProjectID: "p-b", CustomerID: "cus_2", ValidFrom: day},
		{Line: 6, ProjectID: "p-c", ValidFrom: now},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}

	bad := "project_id,customer_id,plan,valid_from\n" +
		"Bad Project,cus_1,pro,2026-03-01T00:00:00Z\n" +
		"p-a,customer-1,pro,2026-03-01T00:00:00Z\n" +
		"p-a,cus_1,platinum,2026-03-01T00:00:00Z\n" +
		"p-b,,pro,2026-03-01T00:00:00Z\n" +
		"p-c,cus_1,pro,yesterday\n" +
		"p-d,cus_1,pro,2027-01-01T00:00:00Z\n" +
		"p-e,cus_1,pro,2026-03-01T00:00:00Z\n" +
		"p-e,cus_1,free,2026-03-01T00:00:00Z\n" +
		"p-f,cus_1\n"
	_, err := accounts.ParseCSV("bad.csv", strings.NewReader(bad), cat, now)
	var ce *accounts.CSVError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	wantProblems := []string{
		`bad.csv:2: project_id "Bad Project" is not a Neon project id`,
		`bad.csv:3: customer_id "customer-1" is not a Stripe customer id`,
		`bad.csv:4: plan "platinum" is not in the plan catalog`,
		`bad.csv:5: plan "pro" without a customer_id`,
		`bad.csv:6: valid_from: "yesterday" is neither RFC 3339`,
		`bad.csv:7: valid_from 2027-01-01T00:00:00Z is in the future`,
		`bad.csv:9: project p-e already has a change at 2026-03-01T00:00:00Z on line 8`,
		`bad.csv:10: wrong number of fields`,
	}
	if len(ce.Problems) != len(wantProblems) {
		t.Fatalf("problems:\n%s", strings.Join(ce.Problems, "\n"))
	}
	for i, w := range wantProblems {
		if !strings.HasPrefix(ce.Problems[i], w) {
			t.Errorf("problem %d = %q, want %q", i, ce.Problems[i], w)
		}
	}

	for name, src := range map[string]string{
		"empty":          "",
		"missing column": "project_id,customer_id,plan\np-a,cus_1,pro\n",
		"unknown column": "project_id,customer_id,plan,valid_from,notes\n",
	} {
		if _, err := accounts.ParseCSV(name, strings.NewReader(src), cat, now); !errors.As(err, &ce) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestPlanImport(t *testing.T) {
	storedHistory := []accounts.Record{
		stored("p-a", h(-24), "cus_1", "free"),
		stored("p-a", h(14), "cus_1", "pro"),
	}
	row := func(p, c, plan string, at time.Time) accounts.Row {
		return accounts.Row{ProjectID: p, CustomerID: c, Plan: plan, ValidFrom: at}
	}
	rows := []accounts.Row{
		row("p-a", "cus_1", "pro", h(14)),        // already stored: skipped
		row("p-a", "cus_1", "free", h(-12)),      // same as the state in force before: skipped
		row("p-a", "cus_1", "enterprise", h(20)), // a change
		row("p-a", "cus_1", "enterprise", h(22)), // no change after the previous row
		row("p-b", "", "", h(1)),                 // unowned, as it already was
		row("p-b", "cus_2", "pro", h(2)),         // a new project
		row("p-a", "cus_1", "free", h(-24)),      // same as stored at that instant
		row("p-c", "cus_3", "pro", h(5)),
		row("p-c", "cus_3", "free", h(5).Add(time.Second)),
	}
	got := changesText(accounts.PlanImport(storedHistory, rows))
	want := dedent(`p-a 03-02T20:00:00 cus_1/enterprise imported
		p-b 03-02T02:00:00 cus_2/pro imported
		p-c 03-02T05:00:00 cus_3/pro imported
		p-c 03-02T05:00:01 cus_3/free imported`)
	if got != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", got, want)
	}
	// A row at a stored instant with another state replaces it.
	got = changesText(accounts.PlanImport(storedHistory, []accounts.Row{row("p-a", "cus_1", "enterprise", h(14))}))
	if got != "p-a 03-02T14:00:00 cus_1/enterprise imported\n" {
		t.Fatalf("replacement: %s", got)
	}
	if again := accounts.PlanImport(append(storedHistory, stored("p-a", h(20), "cus_1", "enterprise")), rows[:4]); len(again) != 0 {
		t.Fatalf("re-import wrote %s", changesText(again))
	}
}

// Project ids follow Neon's pattern ^[a-z0-9-]{1,60}$ (neon.ValidID): a leading "-" is
// accepted (the old accounts-only check refused it); uppercase, "_" and 61 characters are not.
func TestParseCSV_ProjectIDPattern(t *testing.T) {
	cat := catalog(t)
	long := strings.Repeat("a", 60)
	for id, ok := range map[string]bool{"-lead": true, "p-1": true, long: true, long + "a": false, "P-1": false, "p_1": false} {
		_, err := accounts.ParseCSV("ids.csv", strings.NewReader("project_id,customer_id,plan,valid_from\n"+id+",cus_1,pro,2026-03-01\n"), cat, h(30))
		if (err == nil) != ok {
			t.Errorf("project id %q: err = %v, want accepted %v", id, err, ok)
		}
	}
}
