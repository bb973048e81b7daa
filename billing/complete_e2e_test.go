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
			rows = append(rows, collector.ProjectProgress{OrgID: org.ID, ProjectID: p, CompleteThrough: ct, FinalThrough: ct, RereadThrough: ct, Tier: collector.TierRolling,
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

// Hours a budgeted cycle collects within Neon's provisional window are not final: a push holds
// them (they would go out short and be revised), and once a later cycle has re-read them after
// Neon stopped revising them they go out once, at their final value, with no revision.
func TestPush_HoldsProvisionalHoursUntilReadFinal(t *testing.T) {
	ctx := context.Background()
	f := testfleet.New(t, testfleet.Options{Projects: 12})
	org := f.Org(t, "scale")
	cycle := func() {
		t.Helper()
		fl, err := collector.NewFleet(collector.FleetConfig{Orgs: []collector.FleetOrg{{ID: org.ID}}, Neon: f.Client,
			Store: collectorstore.New(f.Conn, f.DB), CallsPerCycle: 100, Lookback: 48 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := fl.Cycle(ctx); err != nil || sum.Collected == 0 {
			t.Fatalf("cycle: %+v, %v", sum, err)
		}
	}
	f.Clock.Set(f.Clock.Now().Truncate(time.Hour).Add(30 * time.Minute))
	provisionalFrom := f.Clock.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	cycle() // the last two hours are read at 94–98 % of their final values

	cat := testworld.Catalog(t, testworld.MeterCatalog)
	f.Clock.Add(3 * time.Hour)
	st := testworld.NewStripe(t, f.Clock.Now())
	st.Setup(t, cat)
	cus := st.Customer(t, "a")
	from, to := testworld.PushWindow(f.Clock.Now())
	// Running totals count from the first hour ClickHouse holds, before the push's window; the
	// customer owns the projects from then on.
	var first time.Time
	if err := f.Conn.QueryRow(ctx, "SELECT min(hour) FROM "+f.DB+".usage_facts").Scan(&first); err != nil || !first.Before(from) {
		t.Fatalf("first collected hour %v, %v: want one before the push window's %v", first, err, from)
	}
	var m testworld.Mapping
	for _, p := range org.ProjectIDs {
		m.Add(p, cus, "pro", first.UTC())
	}
	m.Import(t, f.Conn, f.DB, cat, f.Clock.Now())
	pro, _ := cat.Plan("pro")
	truth := map[testworld.Cell]int64{}
	for c, v := range testworld.Truth(f.Sim, pro, map[string][]string{cus: org.ProjectIDs}, first.UTC(), to) {
		if !c.Hour.Before(from) {
			truth[c] = v
		}
	}
	want := map[testworld.Cell]int64{}
	held := 0
	for c, v := range truth {
		if c.Hour.Before(provisionalFrom) {
			want[c] = v
		} else {
			held++
		}
	}
	if len(want) == 0 || held == 0 {
		t.Fatalf("truth has %d cells before %v and %d from it: the test proves nothing", len(want), provisionalFrom, held)
	}

	cfg := st.PusherConfig(f.Conn, f.DB, cat, f.Clock.Now)
	res, err := testworld.Pusher(t, cfg).Push(ctx, false)
	if err != nil || res.Failed != 0 || res.Incomplete == 0 {
		t.Fatalf("push before the re-read: %d pushed, %d held, %d failed, %v; want the provisional hours held", res.Pushed, res.Incomplete, res.Failed, err)
	}
	testworld.DiffCells(t, "fake Stripe before the re-read", st.MeterHolds(), want)

	cycle() // re-reads the provisional hours, now final
	res, err = testworld.Pusher(t, cfg).Push(ctx, false)
	if err != nil || res.Failed != 0 || res.Incomplete != 0 {
		t.Fatalf("push after the re-read: %d pushed, %d held, %d failed, %v; want nothing held", res.Pushed, res.Incomplete, res.Failed, err)
	}
	testworld.DiffCells(t, "fake Stripe after the re-read", st.MeterHolds(), truth)
	if n := chtest.Count(t, f.Conn, "SELECT count() FROM "+f.DB+".billing_ledger WHERE revision > 1"); n != 0 {
		t.Errorf("%d ledger rows are revisions: a provisional hour was sent and revised", n)
	}
}
