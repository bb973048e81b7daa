package accounts

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// CSVColumns returns the columns an import file must have, in any order, in a header row.
func CSVColumns() []string { return []string{"project_id", "customer_id", "plan", "valid_from"} }

// Row is one validated line of an import file: from ValidFrom on, ProjectID belongs to
// CustomerID on Plan. Both empty means nobody owns the project from then on.
type Row struct {
	Line       int
	ProjectID  string
	CustomerID string
	Plan       string
	ValidFrom  time.Time
}

// CSVError lists every problem of an import file.
type CSVError struct {
	Problems []string
}

func (e *CSVError) Error() string {
	return fmt.Sprintf("import file has %d problem(s):\n%s", len(e.Problems), strings.Join(e.Problems, "\n"))
}

// futureSlack is how far past now an imported change may be dated (clock skew).
const futureSlack = 5 * time.Minute

// ParseCSV reads and validates an import file; name is used in problems. valid_from is RFC 3339
// ("2026-03-02T14:00:00Z") or a date (midnight UTC); empty means now. It is pure apart from
// reading r, and returns a *CSVError listing every problem.
func ParseCSV(name string, r io.Reader, cat *plans.Catalog, now time.Time) ([]Row, error) {
	csvColumns := CSVColumns()
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var problems []string
	bad := func(line int, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, a...)))
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &CSVError{Problems: []string{name + ": empty file; the first line names the columns " + strings.Join(csvColumns, ",")}}
	}
	if err != nil {
		return nil, &CSVError{Problems: []string{fmt.Sprintf("%s: %v", name, err)}}
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			bad(1, "column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			bad(1, "missing column %q (the header must name %s)", c, strings.Join(csvColumns, ","))
		}
	}
	for h := range col {
		if !contains(csvColumns, h) {
			bad(1, "unknown column %q (the header must name %s)", h, strings.Join(csvColumns, ","))
		}
	}
	if len(problems) > 0 {
		return nil, &CSVError{Problems: problems}
	}
	var rows []Row
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "%v", pe.Err)
				if pe.Err == csv.ErrFieldCount {
					continue
				}
			} else {
				bad(line, "%v", err)
			}
			break
		}
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		row := Row{Line: line, ProjectID: get("project_id"), CustomerID: get("customer_id"), Plan: get("plan")}
		n := len(problems)
		if !ValidProjectID(row.ProjectID) {
			bad(line, "project_id %q is not a Neon project id", row.ProjectID)
		}
		if row.CustomerID != "" && (!strings.HasPrefix(row.CustomerID, "cus_") || strings.ContainsAny(row.CustomerID, " \t")) {
			bad(line, "customer_id %q is not a Stripe customer id (cus_…)", row.CustomerID)
		}
		if row.Plan != "" {
			if _, ok := cat.Plan(row.Plan); !ok {
				bad(line, "plan %q is not in the plan catalog (plans: %s)", row.Plan, strings.Join(cat.Names(), ", "))
			}
			if row.CustomerID == "" {
				bad(line, "plan %q without a customer_id: a plan needs someone who pays for it", row.Plan)
			}
		}
		row.ValidFrom, err = parseValidFrom(get("valid_from"), now)
		switch {
		case err != nil:
			bad(line, "valid_from: %v", err)
		case row.ValidFrom.After(now.Add(futureSlack)):
			bad(line, "valid_from %s is in the future", row.ValidFrom.Format(time.RFC3339))
		case row.ValidFrom.Unix() <= 0:
			bad(line, "valid_from %s is not after 1970", row.ValidFrom.Format(time.RFC3339))
		}
		key := row.ProjectID + "@" + row.ValidFrom.Format(time.RFC3339)
		if first, dup := seen[key]; dup && len(problems) == n {
			bad(line, "project %s already has a change at %s on line %d", row.ProjectID, row.ValidFrom.Format(time.RFC3339), first)
		}
		seen[key] = line
		if len(problems) == n {
			rows = append(rows, row)
		}
	}
	if len(problems) > 0 {
		return nil, &CSVError{Problems: problems}
	}
	return rows, nil
}

func parseValidFrom(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-03-02T14:00:00Z) nor a date (2026-03-02)", s)
}

// PlanImport returns the rows that change something, given the stored history of their
// projects. A row is skipped when the stored history already has the same state at the same
// instant, or when the state in force just before it is already the same (records changes
// only). A row at the instant of a stored change with another state replaces it. It is pure.
func PlanImport(stored []schema.AccountChange, rows []Row) []ProjectChange {
	type point struct {
		at    time.Time
		state State
	}
	timeline := map[string][]point{}
	for _, c := range stored {
		timeline[c.ProjectID] = append(timeline[c.ProjectID], point{c.ValidFrom.UTC(), State{CustomerID: c.CustomerID, Plan: c.Plan}})
	}
	sorted := append([]Row(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].ProjectID != sorted[j].ProjectID {
			return sorted[i].ProjectID < sorted[j].ProjectID
		}
		return sorted[i].ValidFrom.Before(sorted[j].ValidFrom)
	})
	var out []ProjectChange
	for _, r := range sorted {
		st := State{CustomerID: r.CustomerID, Plan: r.Plan}
		pts := timeline[r.ProjectID]
		var prev State
		exact, found := State{}, false
		var latest time.Time
		for _, p := range pts {
			switch {
			case p.at.Equal(r.ValidFrom):
				exact, found = p.state, true
			case p.at.Before(r.ValidFrom) && !p.at.Before(latest):
				prev, latest = p.state, p.at
			}
		}
		if (found && exact.Same(st)) || (!found && prev.Same(st)) {
			continue
		}
		out = append(out, ProjectChange{ProjectID: r.ProjectID, Change: Change{At: r.ValidFrom, State: st, Basis: BasisImported}})
		if found {
			for i := range pts {
				if pts[i].at.Equal(r.ValidFrom) {
					pts[i].state = st
				}
			}
		} else {
			pts = append(pts, point{r.ValidFrom, st})
		}
		timeline[r.ProjectID] = pts
	}
	return out
}

// ImportResult says what an import recorded.
type ImportResult struct {
	RunID  string
	Rows   int
	DryRun bool
	// Changes were written (or would have been, in a dry run).
	Changes []ProjectChange
}

// Import writes the rows of a parsed file that change the stored history (see PlanImport).
func Import(ctx context.Context, conn driver.Conn, db string, rows []Row, now time.Time, dryRun bool, m *Metrics) (ImportResult, error) {
	now = now.UTC().Truncate(time.Second)
	res := ImportResult{RunID: newRunID(now), Rows: len(rows), DryRun: dryRun}
	var ids []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.ProjectID] {
			seen[r.ProjectID] = true
			ids = append(ids, r.ProjectID)
		}
	}
	if len(ids) == 0 {
		return res, nil
	}
	stored, err := schema.AccountHistory(ctx, conn, db, ids, EndOfTime())
	if err != nil {
		return res, fmt.Errorf("accounts import: %w", err)
	}
	res.Changes = PlanImport(stored, rows)
	if dryRun {
		return res, nil
	}
	if err := write(ctx, conn, db, res.Changes, schema.AccountSourceCSV, res.RunID, now); err != nil {
		return res, fmt.Errorf("accounts import: %w", err)
	}
	if m != nil {
		m.changes.WithLabelValues(schema.AccountSourceCSV).Add(float64(len(res.Changes)))
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
