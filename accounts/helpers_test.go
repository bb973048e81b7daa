package accounts_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/plans"
)

// day is the day most scenarios happen on; h(14) is 14:00 that day.
var day = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func h(hours float64) time.Time { return day.Add(time.Duration(hours * float64(time.Hour))) }

// parseCSV parses the mapping src, named name, against cat at now; an error fails the test.
func parseCSV(t testing.TB, name, src string, cat *plans.Catalog, now time.Time) []accounts.Row {
	t.Helper()
	rows, err := accounts.ParseCSV(name, strings.NewReader(src), cat, now)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return rows
}

func catalog(t testing.TB) *plans.Catalog {
	t.Helper()
	c, err := plans.Load("../plans/example.yaml")
	if err != nil {
		t.Fatalf("example catalog: %v", err)
	}
	return c
}

// changesText prints changes one per line as "project at customer/plan basis".
func changesText(cs []accounts.ProjectChange) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s %s/%s %s\n", c.ProjectID, c.At.Format("01-02T15:04:05"), c.CustomerID, c.Plan, c.Basis)
	}
	return b.String()
}

func dedent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
