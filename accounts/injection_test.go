package accounts_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/accounts"
)

// csvQuote writes s as one quoted CSV field.
func csvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// An import file's ids with quotes, separators, newlines (in a quoted field), path pieces and
// unicode are refused, each problem naming the file, the line and the value quoted; nothing of
// the file is imported.
func TestParseCSV_HostileIDsRefusedNamingTheLine(t *testing.T) {
	hostileCustomers := []string{`cus_x'); DROP TABLE account_history; --`, `cus_"q\`, "cus_a\nb", "cus_../../v1", "cus_%2F?x=1#f", "cus_ünï", "cus_a,b"}
	hostileProjects := []string{`p'; DROP TABLE x; --`, "p/../q", "p?x=1", "P-UPPER", "prój"}
	var b strings.Builder
	b.WriteString("project_id,customer_id,plan,valid_from\n")
	var want []string
	line := 2
	for _, c := range hostileCustomers {
		fmt.Fprintf(&b, "p-ok,%s,pro,2026-03-01\n", csvQuote(c))
		want = append(want, fmt.Sprintf("hostile.csv:%d: customer_id %s", line, strconv.Quote(c)))
		line += 1 + strings.Count(c, "\n")
	}
	for _, p := range hostileProjects {
		fmt.Fprintf(&b, "%s,cus_1,pro,2026-03-01\n", csvQuote(p))
		want = append(want, fmt.Sprintf("hostile.csv:%d: project_id %s", line, strconv.Quote(p)))
		line++
	}
	rows, err := accounts.ParseCSV("hostile.csv", strings.NewReader(b.String()), catalog(t), h(30))
	var ce *accounts.CSVError
	if !errors.As(err, &ce) || len(rows) != 0 {
		t.Fatalf("want a CSVError and no rows, got %d rows, %v", len(rows), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the problems do not name %s:\n%v", w, err)
		}
	}
}
