package billing_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
)

// A customer's hours are held from the earliest hour any of its projects still misses; a
// project that changed owners holds each owner's hours from where it lags; unmapped projects
// hold nothing.
func TestIncompleteFrom_CutsEachCustomerAtItsLaggingProject(t *testing.T) {
	from := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	h := func(n int) time.Time { return from.Add(time.Duration(n) * time.Hour) }
	tl := accounts.NewTimelines([]accounts.Record{
		{ProjectID: "p-a1", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "scale"},
		{ProjectID: "p-a2", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "scale"},
		{ProjectID: "p-b", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_b", Plan: "scale"},
		{ProjectID: "p-move", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_c", Plan: "scale"},
		{ProjectID: "p-move", ValidFrom: h(10), CustomerID: "cus_d", Plan: "scale"},
	}, "free")
	final := func(id string, through time.Time) billing.Lagging {
		return billing.Lagging{ProjectID: id, CompleteThrough: through, FinalThrough: through}
	}
	cut := billing.IncompleteFrom([]billing.Lagging{
		final("p-a1", h(20)),
		final("p-a2", h(15)),
		final("p-b", from.Add(-48*time.Hour)), // before the window: from its start
		final("p-move", h(5)),
		final("p-nobody", h(1)),
	}, tl, from, to, to)
	want := map[string]time.Time{"cus_a": h(15), "cus_b": h(0), "cus_c": h(5), "cus_d": h(10)}
	if len(cut) != len(want) {
		t.Fatalf("cut = %v, want %v", cut, want)
	}
	for c, at := range want {
		if !cut[c].Equal(at) {
			t.Errorf("cut[%s] = %v, want %v", c, cut[c], at)
		}
	}
}

// Hours collected within Neon's provisional window are held until read again once final; only
// the hours a push takes as they stand (from settled on: a closing period's last hours within
// its invoice grace) need no more than being collected.
func TestIncompleteFrom_HoldsHoursCollectedWhileProvisional(t *testing.T) {
	from := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return from.Add(time.Duration(n) * time.Hour) }
	tl := accounts.NewTimelines([]accounts.Record{
		{ProjectID: "p-a", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "scale"},
		{ProjectID: "p-b", ValidFrom: from.AddDate(0, -1, 0), CustomerID: "cus_b", Plan: "scale"},
	}, "free")
	lagging := []billing.Lagging{
		{ProjectID: "p-a", CompleteThrough: h(20), FinalThrough: h(18)}, // collected at 20:00, final through 18:00
		{ProjectID: "p-b", CompleteThrough: h(22), FinalThrough: h(21)}, // final past the settled hours
	}
	for _, c := range []struct {
		name         string
		to, settled  time.Time
		wantA, wantB time.Time
	}{
		{"every hour settled", h(20), h(20), h(18), h(22)},
		{"the last hours taken as they stand", h(24), h(19), h(18), h(22)},
		{"provisional hours taken as collected", h(24), h(17), h(20), h(22)},
	} {
		wantB := c.wantB
		if !wantB.Before(c.to) {
			wantB = time.Time{} // nothing of the window to hold
		}
		cut := billing.IncompleteFrom(lagging, tl, from, c.to, c.settled)
		if !cut["cus_a"].Equal(c.wantA) || !cut["cus_b"].Equal(wantB) {
			t.Errorf("%s: cut %v, want cus_a at %v and cus_b at %v", c.name, cut, c.wantA, wantB)
		}
	}
}

// Held keys leave both sides of the comparison: a held hour the ledger already holds must not
// read as a revision to zero.
func TestHoldIncomplete_LeavesHeldKeysOutOfBothSides(t *testing.T) {
	h0 := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	key := func(c string, n int) billing.Key {
		return billing.Key{CustomerID: c, Target: "neon_compute", Sink: billing.SinkMeter, Hour: h0.Add(time.Duration(n) * time.Hour)}
	}
	want := []billing.Value{{Key: key("cus_a", 1), Units: 5}, {Key: key("cus_a", 2), Units: 7}, {Key: key("cus_b", 2), Units: 3}}
	ledger := []billing.LedgerRow{
		{CustomerID: "cus_a", Target: "neon_compute", Sink: billing.SinkMeter, Hour: key("cus_a", 2).Hour, Value: 6, Status: billing.LedgerPushed},
		{CustomerID: "cus_b", Target: "neon_compute", Sink: billing.SinkMeter, Hour: key("cus_b", 2).Hour, Value: 3, Status: billing.LedgerPushed},
	}
	keptWant, keptLedger, held := billing.HoldIncomplete(want, ledger, map[string]time.Time{"cus_a": key("cus_a", 2).Hour})
	if held != 1 || len(keptWant) != 2 || keptWant[0].Hour != key("cus_a", 1).Hour || keptWant[1].CustomerID != "cus_b" {
		t.Fatalf("kept %v, held %d; want cus_a hour 1 and cus_b, 1 held", keptWant, held)
	}
	if len(keptLedger) != 1 || keptLedger[0].CustomerID != "cus_b" {
		t.Fatalf("kept ledger %v, want only cus_b's row", keptLedger)
	}
	acts := billing.Plan(keptWant, keptLedger, billing.Rules{Now: h0.Add(48 * time.Hour)})
	for _, a := range acts {
		if a.CustomerID == "cus_a" && a.Hour.Equal(key("cus_a", 2).Hour) {
			t.Fatalf("a held hour was planned: %+v", a)
		}
	}
	if w, l, n := billing.HoldIncomplete(want, ledger, nil); n != 0 || len(w) != 3 || len(l) != 2 {
		t.Fatalf("no cut held %d values", n)
	}
}
