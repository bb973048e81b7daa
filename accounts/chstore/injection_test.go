package chstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// tables lists the tables of db, sorted.
func tables(t *testing.T, db string) []string {
	t.Helper()
	rows, err := chtest.Connect(t).Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// Ids and names from Stripe are not Neon ids and are not checked against a pattern; what
// reaches a row is bound, never pasted into SQL: quotes, backslashes, newlines, statement
// separators and unicode are stored and read back byte for byte, and no statement they spell
// runs (every table is still there, no other row appears).
func TestStore_HostileStringsStoredByteExact(t *testing.T) {
	conn, db := chtest.New(t)
	store := chstore.New(conn, db)
	ctx := context.Background()
	before := tables(t, db)
	hostile := []string{
		`cus_x'); DROP TABLE account_history; --`, `cus_\'\\''`, "cus_a\nb\r\n", `cus_"; SELECT 1; "`,
		"cus_\x00nul", "cus_ünï😀", `cus_{db}.{on_cluster}?`, "cus_%2F../?x=#",
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []accounts.Record
	for i, h := range hostile {
		r := change("proj-"+string(rune('a'+i)), from, h, h)
		r.SubscriptionID, r.RunID = h, h
		recs = append(recs, r)
	}
	if err := store.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := store.At(ctx, nil, from.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read back %d projects, wrote %d", len(got), len(recs))
	}
	for _, w := range recs {
		g := got[w.ProjectID]
		if g.CustomerID != w.CustomerID || g.Plan != w.Plan || g.SubscriptionID != w.SubscriptionID || g.RunID != w.RunID {
			t.Errorf("%s: read back %q %q %q %q, wrote %q", w.ProjectID, g.CustomerID, g.Plan, g.SubscriptionID, g.RunID, w.CustomerID)
		}
	}
	// Bound in a filter too: a hostile project id selects nothing rather than everything.
	for _, h := range append(hostile, `proj-a') OR 1=1 OR ('`, `proj-a' OR '1'='1`) {
		if m, err := store.At(ctx, []string{h}, from.Add(time.Hour)); err != nil || len(m) != 0 {
			t.Errorf("project filter %q: %d rows, %v", h, len(m), err)
		}
	}
	if after := tables(t, db); !slices.Equal(before, after) {
		t.Errorf("tables changed: %v, then %v", before, after)
	}
}
