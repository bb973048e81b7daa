package billing_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/billing"
)

// TestPushWindow: provisional hours wait, except a closed period's last hours while its invoice
// is still open, which would otherwise never reach an invoice.
func TestPushWindow(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name, now, from, to, readFrom string
	}{
		{"mid-month: provisional hours wait", "2026-11-20T10:20:00Z", "2026-11-17T10:00:00Z", "2026-11-20T08:00:00Z", "2026-11-01T00:00:00Z"},
		{"just after the month ended, within grace: the month is pushed to its end", "2026-12-01T00:20:00Z", "2026-11-28T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z"},
		{"after the grace: back to the provisional rule", "2026-12-01T01:20:00Z", "2026-11-28T01:00:00Z", "2026-11-30T23:00:00Z", "2026-11-01T00:00:00Z"},
		{"window across the month start", "2026-12-02T12:20:00Z", "2026-11-29T12:00:00Z", "2026-12-02T10:00:00Z", "2026-11-01T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			readFrom, from, to := billing.PushWindow(at(tc.now), 72*time.Hour, 2*time.Hour, time.Hour)
			if !from.Equal(at(tc.from)) || !to.Equal(at(tc.to)) || !readFrom.Equal(at(tc.readFrom)) {
				t.Fatalf("got read %v, [%v, %v); want read %s, [%s, %s)", readFrom, from, to, tc.readFrom, tc.from, tc.to)
			}
		})
	}
	// Every hour of a period is pushable at some moment before its invoice is final: at the last
	// minute of the grace, the window reaches the period's end.
	end := at("2026-12-01T00:00:00Z")
	for _, grace := range []time.Duration{time.Hour, 3 * time.Hour, 72 * time.Hour} {
		last := end.Add(grace - time.Minute)
		_, _, to := billing.PushWindow(last, 72*time.Hour, 2*time.Hour, grace)
		if to.Before(end) || billing.FinalizedAfterGrace(last, grace)("cus", end.Add(-time.Hour)) {
			t.Errorf("grace %v: at %v the window ends %v; the period's last hour would never be invoiced", grace, last, to)
		}
	}
}
