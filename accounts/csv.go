package accounts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
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
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	p := &csvParser{name: name, cat: cat, now: now, seen: map[string]int{}}
	col, err := p.header(cr)
	if err != nil {
		return nil, err
	}
	rows := p.rows(cr, col)
	if len(p.problems) > 0 {
		return nil, &CSVError{Problems: p.problems}
	}
	return rows, nil
}

// csvParser collects the problems of one file while it reads it.
type csvParser struct {
	name     string
	cat      *plans.Catalog
	now      time.Time
	problems []string
	// seen maps "project@valid_from" to its line: one change per project and instant.
	seen map[string]int
}

func (p *csvParser) bad(line int, format string, a ...any) {
	p.problems = append(p.problems, fmt.Sprintf("%s:%d: %s", p.name, line, fmt.Sprintf(format, a...)))
}

// header reads the header row and returns the index of each column; a header that lacks a
// column or names an unknown one fails the whole file.
func (p *csvParser) header(cr *csv.Reader) (map[string]int, error) {
	columns := CSVColumns()
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &CSVError{Problems: []string{p.name + ": empty file; the first line names the columns " + strings.Join(columns, ",")}}
	}
	if err != nil {
		return nil, &CSVError{Problems: []string{fmt.Sprintf("%s: %v", p.name, err)}}
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			p.bad(1, "column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range columns {
		if _, ok := col[c]; !ok {
			p.bad(1, "missing column %q (the header must name %s)", c, strings.Join(columns, ","))
		}
	}
	for h := range col {
		if !slices.Contains(columns, h) {
			p.bad(1, "unknown column %q (the header must name %s)", h, strings.Join(columns, ","))
		}
	}
	if len(p.problems) > 0 {
		return nil, &CSVError{Problems: p.problems}
	}
	return col, nil
}

// rows reads the lines after the header and returns the valid ones. A line with the wrong
// number of fields is reported and skipped; any other read error ends the file.
func (p *csvParser) rows(cr *csv.Reader, col map[string]int) []Row {
	var out []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				// A read error has no line (FieldPos would panic on the empty record).
				p.problems = append(p.problems, fmt.Sprintf("%s: %v", p.name, err))
				return out
			}
			p.bad(pe.Line, "%v", pe.Err)
			if pe.Err == csv.ErrFieldCount {
				continue
			}
			return out
		}
		line, _ := cr.FieldPos(0)
		if row, ok := p.row(line, rec, col); ok {
			out = append(out, row)
		}
	}
}

// row validates one line; ok is false when it has a problem.
func (p *csvParser) row(line int, rec []string, col map[string]int) (row Row, ok bool) {
	get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
	row = Row{Line: line, ProjectID: get("project_id"), CustomerID: get("customer_id"), Plan: get("plan")}
	n := len(p.problems)
	p.checkOwner(line, row)
	row.ValidFrom = p.validFrom(line, get("valid_from"))
	key := row.ProjectID + "@" + row.ValidFrom.Format(time.RFC3339)
	if first, dup := p.seen[key]; dup && len(p.problems) == n {
		p.bad(line, "project %s already has a change at %s on line %d", row.ProjectID, row.ValidFrom.Format(time.RFC3339), first)
	}
	p.seen[key] = line
	return row, len(p.problems) == n
}

// customerIDPattern is the shape of a Stripe customer id: cus_ and letters, digits or
// underscores, 255 bytes at most. The id reaches Stripe requests, rows and log lines, so a
// quoted field's newline or comma must not pass.
var customerIDPattern = regexp.MustCompile(`^cus_[A-Za-z0-9_]{1,251}$`)

// checkOwner checks the project, customer and plan of a line.
func (p *csvParser) checkOwner(line int, row Row) {
	if !neon.ValidID(row.ProjectID) {
		p.bad(line, "project_id %q is not a Neon project id", row.ProjectID)
	}
	if row.CustomerID != "" && !customerIDPattern.MatchString(row.CustomerID) {
		p.bad(line, "customer_id %q is not a Stripe customer id (cus_…)", row.CustomerID)
	}
	if row.Plan == "" {
		return
	}
	if _, ok := p.cat.Plan(row.Plan); !ok {
		p.bad(line, "plan %q is not in the plan catalog (plans: %s)", row.Plan, strings.Join(p.cat.Names(), ", "))
	}
	if row.CustomerID == "" {
		p.bad(line, "plan %q without a customer_id: a plan needs someone who pays for it", row.Plan)
	}
}

// validFrom parses a line's valid_from and checks it is neither in the future nor before
// 1970; it returns the zero time when it cannot be parsed.
func (p *csvParser) validFrom(line int, s string) time.Time {
	t, err := parseValidFrom(s, p.now)
	switch {
	case err != nil:
		p.bad(line, "valid_from: %v", err)
	case t.After(p.now.Add(futureSlack)):
		p.bad(line, "valid_from %s is in the future", t.Format(time.RFC3339))
	case t.Unix() <= 0:
		p.bad(line, "valid_from %s is not after 1970", t.Format(time.RFC3339))
	}
	return t
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
