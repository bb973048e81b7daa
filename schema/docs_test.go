package schema_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// docExamples returns the ```sql blocks of docs/data-model.md, each rewritten for database db.
func docExamples(t *testing.T, db string) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/data-model.md")
	if err != nil {
		t.Fatalf("read data model doc: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("data-model.md has %d sql examples, want at least 3", len(blocks))
	}
	out := make([]string, len(blocks))
	for i, b := range blocks {
		out[i] = strings.ReplaceAll(b[1], "neonmeter.", db+".")
	}
	return out
}

// docSampleFacts is usage of org-example the documented queries find.
func docSampleFacts() []collector.Fact {
	jan := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var facts []collector.Fact
	for _, m := range []string{"compute_unit_seconds", "root_branch_bytes_month", "child_branch_bytes_month", "public_network_transfer_bytes"} {
		f := fact("p1", m, jan, 150e9, 1)
		f.OrgID = "org-example"
		facts = append(facts, f)
	}
	return facts
}

// The example queries of the data model doc run and find the sample usage.
func TestDataModelDoc_Examples(t *testing.T) {
	conn, db := chtest.New(t)
	if err := collectorstore.New(conn, db).InsertFacts(t.Context(), docSampleFacts()); err != nil {
		t.Fatalf("insert: %v", err)
	}
	for i, q := range docExamples(t, db) {
		rows, err := conn.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("example %d: %v\n%s", i+1, err, q)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		rows.Close()
		if n == 0 {
			t.Fatalf("example %d found nothing:\n%s", i+1, q)
		}
	}
}
