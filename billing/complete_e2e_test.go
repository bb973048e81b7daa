package billing_test

import (
	"context"
	"testing"
	"time"

	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// With a budgeted collector one project of a customer can lag behind the others: its
// customer's hours from where it lags are held back (not sent partial and revised later), the
// other customer's are pushed whole, and once the project catches up the held hours go out once,
// each identifier with one value.
func TestPush_HoldsHoursUntilEveryProjectOfTheCustomerIsCollected(t *testing.T) {
	ctx := context.Background()
	f := testfleet.New(t, testfleet.Options{Projects: 40})
	org := f.Org(t, "scale")
	if len(org.ProjectIDs) < 4 {
		t.Fatalf("org %s has %d projects, want at least 4", org.ID, len(org.ProjectIDs))
	}
	now := f.Clock.Now()
	from, to := testworld.PushWindow(now)
	testworld.Collect(t, f, org, from, now.Truncate(time.Hour))

	cat := testworld.Catalog(t, testworld.MeterCatalog)
	st := testworld.NewStripe(t, now)
	st.Setup(t, cat)
	lagger, withLagger, others := org.ProjectIDs[0], org.ProjectIDs[:2], org.ProjectIDs[2:]
	cusA, cusB := st.Customer(t, "a"), st.Customer(t, "b")
	var m testworld.Mapping
	for _, p := range withLagger {
		m.Add(p, cusA, "pro", from.AddDate(0, 0, -1))
	}
	for _, p := range others {
		m.Add(p, cusB, "pro", from.AddDate(0, 0, -1))
	}
	m.Import(t, f.Conn, f.DB, cat, now)

	// The budgeted collector's view: the lagging project is complete through cut only, so the
	// org's watermark (its oldest project) is there too.
	cut := from.Add(5 * time.Hour)
	cs := collectorstore.New(f.Conn, f.DB)
	feed := collector.Feed{OrgID: org.ID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly}
	progress := func(through map[string]time.Time) {
		t.Helper()
		var rows []collector.ProjectProgress
		oldest := to
		for _, p := range org.ProjectIDs {
			ct, ok := through[p]
			if !ok {
				ct = to
			}
			if ct.Before(oldest) {
				oldest = ct
			}
			rows = append(rows, collector.ProjectProgress{OrgID: org.ID, ProjectID: p, CompleteThrough: ct, Tier: collector.TierRolling,
				UpdatedAt: f.Clock.Now(), RunID: "cycle-test"})
		}
		if err := cs.WriteProgress(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if err := cs.SetWatermark(ctx, feed, oldest, f.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// A second later than the sweep's own watermark, so the newest row is this one.
	f.Clock.Add(time.Second)
	progress(map[string]time.Time{lagger: cut})

	cfg := st.PusherConfig(f.Conn, f.DB, cat, f.Clock.Now)
	res, err := testworld.Pusher(t, cfg).Push(ctx, false)
	if err != nil || res.Failed != 0 || res.Incomplete == 0 {
		t.Fatalf("first push: %+v, %v; want values held as incomplete", res, err)
	}
	pro, _ := cat.Plan("pro")
	truthA := testworld.Truth(f.Sim, pro, map[string][]string{cusA: withLagger}, from, to)
	truthB := testworld.Truth(f.Sim, pro, map[string][]string{cusB: others}, from, to)
	if len(truthA) == 0 || len(truthB) == 0 {
		t.Fatal("the ground truth is empty: the comparison proves nothing")
	}
	want := map[testworld.Cell]int64{}
	for c, v := range truthB {
		want[c] = v
	}
	for c, v := range truthA {
		if c.Hour.Before(cut) {
			want[c] = v
		}
	}
	testworld.DiffCells(t, "fake Stripe while a project lags", st.MeterHolds(), want)

	f.Clock.Add(time.Second)
	progress(nil)
	res, err = testworld.Pusher(t, cfg).Push(ctx, false)
	if err != nil || res.Failed != 0 || res.Incomplete != 0 {
		t.Fatalf("second push: %+v, %v; want nothing held", res, err)
	}
	for c, v := range truthA {
		want[c] = v
	}
	testworld.DiffCells(t, "fake Stripe once complete", st.MeterHolds(), want)
	testworld.DiffCells(t, "ledger once complete", testworld.LedgerHolds(t, billingstore.New(f.Conn, f.DB), from, to), want)
	if n := chtest.Count(t, f.Conn, "SELECT count() FROM "+f.DB+".billing_ledger WHERE revision > 1"); n != 0 {
		t.Errorf("%d ledger rows are revisions: a partial hour was sent and revised", n)
	}
}
