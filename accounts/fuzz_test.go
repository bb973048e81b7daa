package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/neon"
)

// FuzzParseCSV feeds any file to the import parser. A refused file is a *CSVError whose every
// problem starts "map.csv:N: " with N a line of the file (or "map.csv: " for the file as a
// whole); every accepted row holds to the rules of docs/plans-and-accounts.md.
func FuzzParseCSV(f *testing.F) {
	f.Add("project_id,customer_id,plan,valid_from\np-a,cus_1,pro,2026-03-01T00:00:00Z\n")
	f.Add("# exported from the CRM\nproject_id,valid_from,customer_id,plan\np-a,2026-03-01T00:00:00Z,cus_1,free\np-a,2026-03-02T14:00:00Z,cus_1,pro\np-b,2026-03-02,cus_2,\np-c,,,\n")
	f.Add("\ufeffproject_id, customer_id, plan, valid_from\r\n\"p-a\",\"cus_1\",\"pro\",\"2026-03-01\"\r\n")
	f.Add("project_id,customer_id,plan,valid_from\np-a,\"cus_1\nx\",pro,2026-03-01\n")
	f.Add("project_id,customer_id,plan,valid_from\np-a,cus_1,pro,2026-03-01,extra\np\"b,cus_1,pro,\n")
	f.Add("project_id,project_id,plan\n")
	f.Add("\"project_id")
	f.Add("project_id,customer_id,plan,valid_from\np-e,cus_1,pro,2026-03-01T00:00:00+01:00\np-e,cus_1,free,2026-02-28T23:00:00Z\n")
	f.Add("")
	cat := catalog(f)
	now := h(30)
	line := regexp.MustCompile(`^map\.csv(?::(\d+))?: \S`)
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 16<<10 {
			return
		}
		rows, err := accounts.ParseCSV("map.csv", strings.NewReader(src), cat, now)
		if err != nil {
			var ce *accounts.CSVError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v is not a *CSVError with problems", err)
			}
			lines := strings.Count(src, "\n") + 1
			for _, p := range ce.Problems {
				m := line.FindStringSubmatch(p)
				if m == nil {
					t.Fatalf("problem %q does not start with map.csv:LINE: and a cause", p)
				}
				if n, _ := strconv.Atoi(m[1]); m[1] != "" && (n < 1 || n > lines) {
					t.Fatalf("problem %q names line %d of a %d-line file", p, n, lines)
				}
			}
			return
		}
		checkRows(t, rows, cat.Names(), now)
	})
}

func checkRows(t *testing.T, rows []accounts.Row, planNames []string, now time.Time) {
	t.Helper()
	seen := map[string]bool{}
	for i, r := range rows {
		switch {
		case !neon.ValidID(r.ProjectID):
			t.Fatalf("accepted project_id %q", r.ProjectID)
		case r.CustomerID != "" && (!strings.HasPrefix(r.CustomerID, "cus_") || strings.ContainsAny(r.CustomerID, " \t\r\n")):
			t.Fatalf("accepted customer_id %q", r.CustomerID)
		case r.Plan != "" && (r.CustomerID == "" || !contains(planNames, r.Plan)):
			t.Fatalf("accepted plan %q for customer %q", r.Plan, r.CustomerID)
		case r.ValidFrom.Location() != time.UTC || r.ValidFrom.Unix() <= 0 || r.ValidFrom.After(now.Add(5*time.Minute)):
			t.Fatalf("accepted valid_from %v", r.ValidFrom)
		case r.Line < 2 || i > 0 && r.Line <= rows[i-1].Line:
			t.Fatalf("row %d on line %d after line %d", i, r.Line, rows[max(i-1, 0)].Line)
		}
		k := r.ProjectID + "@" + r.ValidFrom.Format(time.RFC3339)
		if seen[k] {
			t.Fatalf("accepted two changes of %s", k)
		}
		seen[k] = true
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Found by FuzzParseCSV: a bare quote in a line's first field panicked the parser (FieldPos of
// a record that has no field), and a quoted customer_id could carry a newline or a comma.
func TestParseCSV_MalformedLinesAreProblems(t *testing.T) {
	cat := catalog(t)
	for _, tc := range []struct{ src, want string }{
		{"project_id,customer_id,plan,valid_from\np-a,cus_1,pro,\np\"b,cus_1,pro,\n", `map.csv:3: bare " in non-quoted-field`},
		{"project_id,customer_id,plan,valid_from\n\"p-a,cus_1,pro,\n", "map.csv:2: extraneous or missing \" in quoted-field"},
		{"project_id,customer_id,plan,valid_from\np-a,\"cus_1\nx\",pro,2026-03-01\n", `map.csv:2: customer_id "cus_1\nx" is not a Stripe customer id`},
		{"project_id,customer_id,plan,valid_from\np-a,\"cus_1,cus_2\",pro,2026-03-01\n", `customer_id "cus_1,cus_2" is not a Stripe customer id`},
		{"project_id,customer_id,plan,valid_from\np-a,cus_,pro,2026-03-01\n", `customer_id "cus_" is not a Stripe customer id`},
	} {
		_, err := accounts.ParseCSV("map.csv", strings.NewReader(tc.src), cat, h(30))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want a problem %q", tc.src, err, tc.want)
		}
	}
	rows := parseCSV(t, "map.csv", "project_id,customer_id,plan,valid_from\np-a,cus_Nf3x_9,pro,2026-03-01\n", cat, h(30))
	if len(rows) != 1 || rows[0].CustomerID != "cus_Nf3x_9" {
		t.Fatalf("rows = %+v", rows)
	}
}

// snapshotReplay answers the lists of a snapshot: the fuzzed customer and subscription pages,
// empty item and product lists, and a 500 once snapshotMaxRequests were served.
type snapshotReplay struct {
	customers, subscriptions []byte
	n                        int
}

// snapshotMaxRequests bounds one snapshot: reaching it means a list would page forever.
const snapshotMaxRequests = 32

func (r *snapshotReplay) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n++
	status, body := http.StatusOK, []byte(`{"object":"list","has_more":false,"data":[]}`)
	switch {
	case r.n > snapshotMaxRequests:
		status, body = http.StatusInternalServerError, []byte(`{"error":{"type":"api_error","message":"fuzz: too many requests"}}`)
	case req.URL.Path == "/v1/customers":
		body = r.customers
	case req.URL.Path == "/v1/subscriptions":
		body = r.subscriptions
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// FuzzStripeSnapshot reads a snapshot from any customer and subscription list pages and
// derives the projects' timelines: a list never pages forever, a failure names its list, and
// every timeline Derive builds is well-formed (deterministically).
func FuzzStripeSnapshot(f *testing.F) {
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"cus_1","object":"customer","created":1772409600,"metadata":{"neon_project_id":"p-a,p-b"}}]}`),
		[]byte(`{"object":"list","has_more":false,"data":[{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active","created":1772413200,"start_date":1772413200,`+
			`"items":{"object":"list","has_more":false,"data":[{"id":"si_1","created":1772413200,"price":{"id":"price_1","lookup_key":"pro","product":"prod_1"}}]}}]}`))
	f.Add([]byte(`{"object":"list","has_more":true,"data":[{"id":"cus_1","metadata":{"neon_project_id":"p-a"}}]}`), []byte(`{"object":"list","data":[]}`))
	f.Add([]byte(`{"object":"list","has_more":true,"data":[]}`), []byte(`{}`))
	f.Add([]byte(`{"object":"list","has_more":false,"data":[{"id":"cus_1","metadata":{"neon_project_id":"p-a"}},{"id":"cus_2","metadata":{"neon_project_id":"p-a;Bad"}}]}`),
		[]byte(`{"object":"list","has_more":false,"data":[{"id":"sub_1","customer":"cus_2","status":"canceled","start_date":5,"ended_at":4,"items":{"data":[{"id":"si","price":{"lookup_key":"free"}}]}}]}`))
	cat := catalog(f)
	f.Fuzz(func(t *testing.T, customers, subscriptions []byte) {
		if len(customers)+len(subscriptions) > 64<<10 {
			return
		}
		rp := &snapshotReplay{customers: customers, subscriptions: subscriptions}
		sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fuzz", URL: "http://stripe.test", HTTPClient: &http.Client{Transport: rp}})
		snap, err := accounts.FetchSnapshot(context.Background(), sc, accounts.Retry{MaxAttempts: 1})
		if rp.n > snapshotMaxRequests {
			t.Fatalf("%d requests: a list pages forever", rp.n)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "list ") {
				t.Fatalf("error %q does not name the list", err)
			}
			return
		}
		d := accounts.Derive(snap, cat)
		if again := accounts.Derive(snap, cat); fmt.Sprint(again) != fmt.Sprint(d) {
			t.Fatalf("Derive is not deterministic:\n%v\n%v", d, again)
		}
		checkDerived(t, d, snap, cat.Names())
	})
}

// checkDerived: timelines are keyed by valid project ids, non-empty, strictly in time order,
// owned by a customer of the snapshot, on a plan of the catalog or none.
func checkDerived(t *testing.T, d accounts.Derived, snap accounts.Snapshot, planNames []string) {
	t.Helper()
	customers := map[string]bool{}
	for _, c := range snap.Customers {
		customers[c.ID] = true
	}
	for p, changes := range d.Projects {
		if !neon.ValidID(p) || len(changes) == 0 || d.Skip[p] {
			t.Fatalf("timeline of project %q: %v (skipped %v)", p, changes, d.Skip[p])
		}
		for i, c := range changes {
			switch {
			case i > 0 && !c.At.After(changes[i-1].At):
				t.Fatalf("project %s: change %d at %s after %s", p, i, c.At, changes[i-1].At)
			case !customers[c.CustomerID]:
				t.Fatalf("project %s: owned by %q, not a customer of the snapshot", p, c.CustomerID)
			case c.Plan != "" && !contains(planNames, c.Plan):
				t.Fatalf("project %s: plan %q is not in the catalog", p, c.Plan)
			}
		}
	}
}
