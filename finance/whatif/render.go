package whatif

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/neonmeter/neonmeter/finance"
)

// Formats Write knows.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (string, error) {
	switch s {
	case FormatTable, FormatCSV, FormatJSON:
		return s, nil
	}
	return "", fmt.Errorf("format %q: want table, csv or json", s)
}

// Write prints the report in format: a table for the terminal, CSV (one row per line, a header
// first) or JSON (the Report).
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case FormatCSV:
		return writeCSV(w, rep)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(w, rep)
}

var header = []string{"plan", "customer", "measure", "unit", "actual", "simulated", "change"}

func (l Line) fields() []string {
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	if l.Micros {
		num = finance.FormatMicros
	}
	return []string{l.Plan, l.Customer, l.Measure, l.Unit, num(l.Actual), num(l.Simulated), num(l.Change)}
}

func writeCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, l := range rep.Lines {
		if err := cw.Write(l.fields()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "period %s (%s – %s): actual (ledger, enforcement audit) vs simulated (draft catalog)\n\n",
		rep.Period, rep.From.Format("2006-01-02"), rep.To.Format("2006-01-02"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t"))+"\t")
	for _, l := range rep.Lines {
		f := l.fields()
		if l.Change > 0 {
			f[6] = "+" + f[6]
		}
		fmt.Fprintln(tw, strings.Join(f, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Lines) == 0 {
		fmt.Fprintln(w, "no usage, billing or enforcement in the period")
	}
	if len(rep.UnknownPlans) > 0 {
		fmt.Fprintf(w, "\nplans in force the draft lacks (their projects are neither billed nor judged under it): %s\n",
			strings.Join(rep.UnknownPlans, ", "))
	}
	return nil
}
