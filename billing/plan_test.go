package billing_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/testworld"
	"github.com/neonmeter/neonmeter/plans"
)

var h0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func hr(n int) time.Time { return h0.Add(time.Duration(n) * time.Hour) }

const planYAML = `version: 1
plans:
  - name: free
  - name: pro
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
      written_data_bytes: {price: price_written, unit: GB}
`

func testCatalog(t testing.TB) *plans.Catalog { return testworld.Catalog(t, planYAML) }

func TestDesired(t *testing.T) {
	cat := testCatalog(t)
	tl := accounts.NewTimelines([]accounts.Record{
		{ProjectID: "p1", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"},
		{ProjectID: "p2", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"},
		{ProjectID: "p3", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_b", Plan: "free"},
		{ProjectID: "p3", ValidFrom: hr(2), CustomerID: "cus_b", Plan: "pro"},
	}, "free")
	u := func(p, m string, h int, v uint64) billing.HourlyUsage {
		return billing.HourlyUsage{ProjectID: p, Metric: m, Hour: hr(h), Value: v}
	}
	usage := []billing.HourlyUsage{
		// cus_a: p1 + p2 compute; 1800+1800 = 1 CU-hour at hour 0, then 1800 (cum 1.5h → 1), 1800 (cum 2h → 2)
		u("p1", "compute_unit_seconds", 0, 1800), u("p2", "compute_unit_seconds", 0, 1800),
		u("p1", "compute_unit_seconds", 1, 1800), u("p1", "compute_unit_seconds", 2, 1800),
		// ceil: 1 byte bills a started GB, the next 999,999,999 bytes nothing more
		u("p1", "public_network_transfer_bytes", 0, 1), u("p1", "public_network_transfer_bytes", 1, 999_999_999),
		u("p1", "written_data_bytes", 1, 3_000_000_000),
		// p3 is on free (not billed) until hour 2
		u("p3", "compute_unit_seconds", 1, 7200), u("p3", "compute_unit_seconds", 3, 7200),
		// unmapped project: billed to no one
		u("px", "compute_unit_seconds", 1, 7200),
		// a metric no plan bills
		u("p1", "active_time_seconds", 1, 3600),
		// before the window: feeds the running total only (cum 1800 s)
		u("p2", "compute_unit_seconds", -5, 1800),
	}
	got := mustDesired(t, usage, tl, cat, hr(0), hr(4))
	type kv struct {
		cus, target string
		h           int
		units       int64
	}
	want := []kv{
		{"cus_a", "neon_compute", 0, 1}, // cum 1800 → 5400: floor 0 → 1
		{"cus_a", "neon_compute", 1, 1}, // 5400 → 7200: 1 → 2
		{"cus_a", "neon_compute", 2, 0}, // 7200 → 9000: 2 → 2
		{"cus_a", "neon_transfer", 0, 1},
		{"cus_a", "neon_transfer", 1, 0},
		{"cus_a", "price_written", 1, 3},
		{"cus_b", "neon_compute", 3, 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.CustomerID != w.cus || g.Target != w.target || !g.Hour.Equal(hr(w.h)) || g.Units != w.units {
			t.Errorf("value %d = %s %s %s %d, want %s %s %s %d", i, g.CustomerID, g.Target, g.Hour.Format(time.RFC3339), g.Units,
				w.cus, w.target, hr(w.h).Format(time.RFC3339), w.units)
		}
	}
	if got[5].Sink != billing.SinkUsageRecord || got[0].Sink != billing.SinkMeter {
		t.Errorf("sinks = %s, %s", got[5].Sink, got[0].Sink)
	}
}

// A revision of an early hour moves the rounding of later hours: they change too, and the
// period's total stays Units(Σ raw).
func TestDesired_EarlyRevisionMovesLaterHours(t *testing.T) {
	cat := testCatalog(t)
	tl := accounts.NewTimelines([]accounts.Record{{ProjectID: "p1", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"}}, "free")
	before := []billing.HourlyUsage{
		{ProjectID: "p1", Metric: "compute_unit_seconds", Hour: hr(0), Value: 3000},
		{ProjectID: "p1", Metric: "compute_unit_seconds", Hour: hr(1), Value: 3000},
		{ProjectID: "p1", Metric: "compute_unit_seconds", Hour: hr(2), Value: 3000},
	}
	after := append([]billing.HourlyUsage(nil), before...)
	after[0].Value = 3600
	units := func(vs []billing.Value) []int64 {
		var out []int64
		for _, v := range vs {
			out = append(out, v.Units)
		}
		return out
	}
	b, a := units(mustDesired(t, before, tl, cat, hr(0), hr(3))), units(mustDesired(t, after, tl, cat, hr(0), hr(3)))
	if b[0] != 0 || b[1] != 1 || b[2] != 1 || a[0] != 1 || a[1] != 0 || a[2] != 1 {
		t.Fatalf("before %v, after %v; want [0 1 1] and [1 0 1]", b, a)
	}
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	k := billing.Key{CustomerID: "cus_a", Target: "neon_compute", Sink: billing.SinkMeter, Hour: time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)}
	old := k
	old.Hour = time.Date(2026, 10, 20, 5, 0, 0, 0, time.UTC) // > 35 days
	prevMonth := k
	prevMonth.Hour = time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC) // finalized (period ended + grace)
	row := func(k billing.Key, status billing.LedgerStatus, value, confirmed int64, rev uint32) billing.LedgerRow {
		return billing.LedgerRow{CustomerID: k.CustomerID, Target: k.Target, Sink: k.Sink, Hour: k.Hour, Status: status,
			Value: value, ConfirmedValue: confirmed, Revision: rev, Identifier: billing.Identifier(k, rev), Accounted: confirmed}
	}
	// accounted sets what Stripe plus earlier late adjustments account for (an older late row).
	accounted := func(r billing.LedgerRow, v int64) billing.LedgerRow { r.Accounted = v; return r }
	val := func(k billing.Key, u int64) billing.Value { return billing.Value{Key: k, Units: u} }
	rules := billing.Rules{Now: now, MaxAge: billing.DefaultMaxAge, Finalized: billing.FinalizedAfterGrace(now, time.Hour)}
	tests := []struct {
		name   string
		want   []billing.Value
		ledger []billing.LedgerRow
		kind   billing.ActionKind // "" means no action
		rev    uint32
		prev   int64
		reason billing.LateReason
	}{
		{"new value", []billing.Value{val(k, 3)}, nil, billing.ActionSend, 1, 0, ""},
		{"new zero is nothing", []billing.Value{val(k, 0)}, nil, "", 0, 0, ""},
		{"pushed and unchanged", []billing.Value{val(k, 3)}, []billing.LedgerRow{row(k, billing.LedgerPushed, 3, 3, 1)}, "", 0, 0, ""},
		{"pushed then changed", []billing.Value{val(k, 4)}, []billing.LedgerRow{row(k, billing.LedgerPushed, 3, 3, 1)}, billing.ActionSend, 2, 3, ""},
		{"pushed then gone (to zero)", nil, []billing.LedgerRow{row(k, billing.LedgerPushed, 3, 3, 1)}, billing.ActionSend, 2, 3, ""},
		{"intent same value resumes", []billing.Value{val(k, 3)}, []billing.LedgerRow{row(k, billing.LedgerIntent, 3, 0, 1)}, billing.ActionResume, 1, 0, ""},
		{"intent other value: new revision", []billing.Value{val(k, 5)}, []billing.LedgerRow{row(k, billing.LedgerIntent, 3, 2, 4)}, billing.ActionSend, 5, 2, ""},
		{"failed: new revision", []billing.Value{val(k, 3)}, []billing.LedgerRow{row(k, billing.LedgerFailed, 3, 0, 1)}, billing.ActionSend, 2, 0, ""},
		{"late and unchanged", []billing.Value{val(prevMonth, 7)}, []billing.LedgerRow{row(prevMonth, billing.LedgerLate, 7, 5, 2)}, "", 0, 0, ""},
		{"finalized revision", []billing.Value{val(prevMonth, 7)}, []billing.LedgerRow{row(prevMonth, billing.LedgerPushed, 5, 5, 1)}, billing.ActionLate, 2, 5, billing.LateFinalized},
		{"finalized, never pushed", []billing.Value{val(prevMonth, 2)}, nil, billing.ActionLate, 1, 0, billing.LateFinalized},
		{"too old revision", []billing.Value{val(old, 1)}, []billing.LedgerRow{row(old, billing.LedgerPushed, 4, 4, 3)}, billing.ActionLate, 4, 4, billing.LateFinalized},
		{"late over a late row", []billing.Value{val(prevMonth, 9)}, []billing.LedgerRow{row(prevMonth, billing.LedgerLate, 7, 5, 2)}, billing.ActionLate, 3, 7, billing.LateFinalized},
		{"finalized intent after a late row", []billing.Value{val(prevMonth, 5)}, []billing.LedgerRow{accounted(row(prevMonth, billing.LedgerIntent, 5, 5, 3), 7)}, billing.ActionLate, 4, 7, billing.LateFinalized},
		{"failed after a late row", []billing.Value{val(prevMonth, 9)}, []billing.LedgerRow{accounted(row(prevMonth, billing.LedgerFailed, 9, 5, 3), 7)}, billing.ActionLate, 4, 7, billing.LateFinalized},
		{"finalized intent supersedes it", []billing.Value{val(prevMonth, 3)}, []billing.LedgerRow{row(prevMonth, billing.LedgerIntent, 3, 1, 2)}, billing.ActionLate, 3, 1, billing.LateFinalized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := billing.Plan(tc.want, tc.ledger, rules)
			if tc.kind == "" {
				if len(got) != 0 {
					t.Fatalf("got %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d actions, want 1: %+v", len(got), got)
			}
			a := got[0]
			if a.Kind != tc.kind || a.Revision != tc.rev || a.Previous != tc.prev || a.Reason != tc.reason {
				t.Fatalf("got kind %s rev %d prev %d reason %q, want %s %d %d %q", a.Kind, a.Revision, a.Previous, a.Reason, tc.kind, tc.rev, tc.prev, tc.reason)
			}
			if a.Identifier != billing.Identifier(a.Key, a.Revision) {
				t.Fatalf("identifier %s is not the revision's", a.Identifier)
			}
		})
	}
	// Too old wins only when not finalized: an hour of the current period past MaxAge.
	r2 := billing.Rules{Now: now, MaxAge: 24 * time.Hour}
	if got := billing.Plan([]billing.Value{val(k, 1)}, nil, r2); len(got) != 1 || got[0].Reason != billing.LateTooOld {
		t.Fatalf("too old: %+v", got)
	}
}

func TestIdentifier(t *testing.T) {
	k := billing.Key{CustomerID: "cus_a", Target: "neon_compute", Sink: billing.SinkMeter, Hour: h0}
	a, b := billing.Identifier(k, 1), billing.Identifier(k, 2)
	if a == b || a != billing.Identifier(k, 1) || len(a) > 100 {
		t.Fatalf("identifiers %q %q", a, b)
	}
	k2 := k
	k2.Hour = hr(1)
	if billing.Identifier(k2, 1) == a {
		t.Fatal("two hours share an identifier")
	}
}
