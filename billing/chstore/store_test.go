package chstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/billing"
)

// step returns a ledger row of revision rev at status, with the version the pusher gives it.
func step(hour time.Time, rev uint32, status billing.LedgerStatus, value, confirmed int64) billing.LedgerRow {
	v := 2 * uint64(rev)
	if status != billing.LedgerIntent {
		v++
	}
	return billing.LedgerRow{CustomerID: "cus_a", Target: "neon_compute", Hour: hour, Sink: billing.SinkMeter, Metric: "compute_unit_seconds",
		Value: value, ConfirmedValue: confirmed, Revision: rev, Identifier: "id", Status: status, RecordedAt: now, RunID: "run", Version: v}
}

// carrying returns r carrying accounted, as the pusher writes it.
func carrying(r billing.LedgerRow, accounted int64) billing.LedgerRow {
	r.Accounted = accounted
	return r
}

// TestLedger_NewestStepAndAccounted: the ledger read returns each key's newest step with typed
// sink and status, and Accounted is the newest pushed or late value even when an intent or a
// failure came after it; a step written twice is one step.
func TestLedger_NewestStepAndAccounted(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	other := h0.Add(time.Hour)
	rows := []billing.LedgerRow{
		step(h0, 1, billing.LedgerIntent, 3, 0), carrying(step(h0, 1, billing.LedgerPushed, 3, 3), 3),
		carrying(step(h0, 2, billing.LedgerLate, 5, 3), 5), carrying(step(h0, 3, billing.LedgerIntent, 4, 3), 5),
		carrying(step(h0, 3, billing.LedgerIntent, 4, 3), 5),
		step(other, 1, billing.LedgerIntent, 2, 0), step(other, 1, billing.LedgerFailed, 2, 0),
	}
	if err := s.InsertLedger(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := s.Ledger(ctx, h0, h0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d keys, want 2: %+v", len(got), got)
	}
	if want := rows[4]; !reflect.DeepEqual(got[0], want) {
		t.Fatalf("newest step of %s:\n got %+v\nwant %+v", h0, got[0], rows[4])
	}
	if got[1].Status != billing.LedgerFailed || got[1].Accounted != 0 || got[1].Revision != 1 {
		t.Fatalf("newest step of %s = %+v, want failed rev 1 with nothing accounted", other, got[1])
	}
	if none, err := s.Ledger(ctx, h0.Add(2*time.Hour), h0.Add(3*time.Hour)); err != nil || len(none) != 0 {
		t.Fatalf("an empty range read %d rows, err %v", len(none), err)
	}
}

// TestLedger_AccountedSurvivesMerge: the ledger is a ReplacingMergeTree, so a background merge
// may keep only a key's newest row at any moment. Accounted (the base of a late adjustment) is
// the same before and after: each step is its own insert, as the pusher writes them, and
// OPTIMIZE … FINAL forces the merge a busy server runs on its own schedule.
func TestLedger_AccountedSurvivesMerge(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	steps := []billing.LedgerRow{
		step(h0, 1, billing.LedgerIntent, 3, 0), carrying(step(h0, 1, billing.LedgerPushed, 3, 3), 3),
		carrying(step(h0, 2, billing.LedgerLate, 5, 3), 5), carrying(step(h0, 3, billing.LedgerIntent, 4, 3), 5),
	}
	for _, r := range steps {
		if err := s.InsertLedger(ctx, []billing.LedgerRow{r}); err != nil {
			t.Fatal(err)
		}
	}
	for _, when := range []string{"before the merge", "after the merge"} {
		got, err := s.Ledger(ctx, h0, h0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Revision != 3 || got[0].Status != billing.LedgerIntent || got[0].Accounted != 5 {
			t.Fatalf("%s: ledger = %+v, want the intent of revision 3 with 5 accounted (the late row's value)", when, got)
		}
		if err := s.Conn.Exec(ctx, "OPTIMIZE TABLE "+s.DB+".billing_ledger FINAL"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLedger_RowsBeforeAccountedColumn: rows written before migration 0010 hold no accounted
// value (-1); Accounted then comes from the newest pushed or late row still stored.
func TestLedger_RowsBeforeAccountedColumn(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	for _, r := range []billing.LedgerRow{step(h0, 1, billing.LedgerPushed, 3, 3), step(h0, 2, billing.LedgerLate, 5, 3), step(h0, 3, billing.LedgerFailed, 4, 3)} {
		// The columns an older neonmeter wrote, each step its own insert.
		b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+".billing_ledger (customer_id, target, hour, sink, metric, value, confirmed_value, revision, status, version)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(r.CustomerID, r.Target, r.Hour, string(r.Sink), r.Metric, r.Value, r.ConfirmedValue, r.Revision, string(r.Status), r.Version); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Ledger(ctx, h0, h0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != billing.LedgerFailed || got[0].Accounted != 5 {
		t.Fatalf("ledger = %+v, want the failed row of revision 3 with 5 accounted", got)
	}
}

// TestInsertLedger_RefusesRowsWithoutKey: a row without a customer, a target or a known sink
// refuses the whole batch.
func TestInsertLedger_RefusesRowsWithoutKey(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	good := step(h0, 1, billing.LedgerIntent, 1, 0)
	for name, edit := range map[string]func(*billing.LedgerRow){
		"no customer": func(r *billing.LedgerRow) { r.CustomerID = "" },
		"no target":   func(r *billing.LedgerRow) { r.Target = "" },
		"bad sink":    func(r *billing.LedgerRow) { r.Sink = "invoice" },
		// -1 would read as a row written before accounted_value existed.
		"negative accounted": func(r *billing.LedgerRow) { r.Accounted = -1 },
	} {
		bad := good
		edit(&bad)
		if err := s.InsertLedger(ctx, []billing.LedgerRow{good, bad}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got, err := s.Ledger(ctx, h0, h0.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("a refused batch left %d rows (err %v)", len(got), err)
	}
	if err := s.InsertLedger(ctx, nil); err != nil {
		t.Fatalf("no rows: %v", err)
	}
}

// TestLateAdjustments_RoundTripAndRewrite: adjustments read back as written, with typed sink
// and reason; recording the same revision again (a crash between the two writes) keeps one.
func TestLateAdjustments_RoundTripAndRewrite(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	a := billing.LateAdjustment{CustomerID: "cus_a", Target: "price_w", Hour: h0, Sink: billing.SinkUsageRecord, Revision: 2,
		Metric: "written_data_bytes", PeriodStart: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		OldValue: 3, NewValue: 1, Amount: -2, Reason: billing.LateTooOld, DetectedAt: now, RunID: "run"}
	for range 2 {
		if err := s.InsertLateAdjustments(ctx, []billing.LateAdjustment{a}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.lateAdjustments(ctx, h0, h0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], a) {
		t.Fatalf("got %+v, want exactly %+v", got, a)
	}
}

// TestDrift_RoundTrip: a reconciliation's drift rows read back by its run id, and only its.
func TestDrift_RoundTrip(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	d := []billing.Drift{
		{CheckedAt: now, RunID: "rec-1", CustomerID: "cus_a", Target: "neon_compute", Sink: billing.SinkMeter, Bucket: h0, Expected: 2, Actual: 1, Drift: -1},
		{CheckedAt: now, RunID: "rec-1", CustomerID: "cus_b", Target: "price_w", Sink: billing.SinkUsageRecord,
			Bucket: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Expected: 0, Actual: 4, Drift: 4},
	}
	if err := s.InsertDrift(ctx, append(d, billing.Drift{CheckedAt: now, RunID: "rec-2", CustomerID: "cus_a", Target: "neon_compute",
		Sink: billing.SinkMeter, Bucket: h0, Expected: 2, Actual: 2})); err != nil {
		t.Fatal(err)
	}
	got, err := s.driftOfRun(ctx, "rec-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("drift of rec-1:\n got %+v\nwant %+v", got, d)
	}
}
