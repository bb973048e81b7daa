package accounts_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/internal/testclock"
)

const fakeKey = "sk_test_neonmeter_fake_0001"

// startFake starts a Stripe fake accepting key, on a test clock the syncer reads too.
func startFake(t testing.TB, key string) (*stripefake.Server, *httptest.Server, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(w)
	fake := stripefake.New(stripefake.Options{APIKey: key, Now: clock.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv, clock
}

func stripeClient(srv *httptest.Server, key string, log *slog.Logger) *client.API {
	return accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: srv.URL, HTTPClient: srv.Client(), Logger: log})
}

func newSyncer(t testing.TB, sc *client.API, conn driver.Conn, db string, now func() time.Time, m *accounts.Metrics, log *slog.Logger) *accounts.Syncer {
	t.Helper()
	if log == nil {
		log = chtest.Logger(t)
	}
	s, err := accounts.NewSyncer(accounts.Config{Stripe: sc, Store: chstore.New(conn, db), Catalog: catalog(t), DefaultPlan: "free",
		Logger: log, Metrics: m, Now: now, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rowCount(t testing.TB, conn driver.Conn, db string) uint64 {
	t.Helper()
	return chtest.Count(t, conn, "SELECT count() FROM "+db+".account_history FINAL")
}

// newMetrics registers the accounts metrics on a registry of the test's own.
func newMetrics(t testing.TB) (*prometheus.Registry, *accounts.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := accounts.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// 5,000 customers (some with several projects, some changing plan mid-period, some
// cancelled and some back) synced three times while their history unfolds: afterwards the
// plan in force for every project and hour matches the fake's truth, and a further sync writes
// nothing.
func TestSync_FiveThousandCustomers(t *testing.T) {
	fake, srv, clock := startFake(t, fakeKey)
	sc := stripeClient(srv, fakeKey, nil)
	conn, db := chtest.New(t)
	reg, m := newMetrics(t)
	syncer := newSyncer(t, sc, conn, db, clock.Now, m, slog.New(slog.DiscardHandler))

	seedStart := time.Now()
	s := newScenario(t, clock, sc)
	s.addCustomers(5000, 1)
	if len(s.onHour) != 10 || len(s.midHour) != 10 {
		t.Fatalf("scenario has %d on-hour and %d mid-hour upgrades", len(s.onHour), len(s.midHour))
	}
	var results []accounts.SyncResult
	syncAt := func(at time.Time, faults ...stripefake.Fault) {
		s.at(at, func() {
			for _, f := range faults {
				fake.Inject(f)
			}
			fake.ResetRequests()
			start := time.Now()
			res, err := syncer.Sync(t.Context(), false)
			if err != nil {
				t.Fatalf("sync at %s: %v", at, err)
			}
			t.Logf("sync at %s: %d customers, %d subscriptions, %d changes, %d requests in %s",
				at.Format(time.RFC3339), res.Customers, res.Subscriptions, len(res.Changes), len(fake.Requests()), time.Since(start).Round(time.Millisecond))
			if n := fake.PendingFaults(); n != 0 {
				t.Fatalf("sync at %s left %d injected faults unused", at, n)
			}
			results = append(results, res)
		})
	}
	syncAt(s0)
	// The middle sync meets a rate limit, server errors and a dropped connection.
	syncAt(t1,
		stripefake.Fault{Method: "GET", Path: "/v1/customers", Skip: 2, Status: 429},
		stripefake.Fault{Method: "GET", Path: "/v1/subscriptions", Skip: 5, Times: 2, Status: 503},
		stripefake.Fault{Method: "GET", Path: "/v1/subscriptions", Skip: 10, Drop: stripefake.DropBefore},
		stripefake.Fault{Method: "GET", Path: "/v1/products", Status: 500},
	)
	syncAt(t2)
	syncAt(t2.Add(10 * time.Minute))

	// Usage of 40 projects nobody owns, and of some owned ones.
	var facts []collector.Fact
	var unowned []string
	for i := range 40 {
		p := fmt.Sprintf("p-unowned-%02d", i)
		unowned = append(unowned, p)
		facts = append(facts, collector.Fact{OrgID: "org-1", ProjectID: p, Metric: "compute_unit_seconds", Hour: t2.Add(-3 * time.Hour), Value: 1, Version: 1})
	}
	for _, c := range s.customers[:100] {
		facts = append(facts, collector.Fact{OrgID: "org-1", ProjectID: c.projects[0], Metric: "compute_unit_seconds", Hour: t2.Add(-3 * time.Hour), Value: 1, Version: 1})
	}
	s.at(t2.Add(5*time.Minute), func() {
		if err := collectorstore.New(conn, db).InsertFacts(t.Context(), facts); err != nil {
			t.Fatal(err)
		}
	})
	s.run()
	t.Logf("history and syncs took %s", time.Since(seedStart).Round(time.Millisecond))

	if len(results) != 4 {
		t.Fatalf("%d syncs ran", len(results))
	}
	last := results[3]
	if last.Customers != 5000 || len(last.Problems) != 0 {
		t.Fatalf("last sync saw %d customers, problems %v", last.Customers, last.Problems)
	}
	if len(last.Changes) != 0 {
		t.Fatalf("a sync right after another wrote %d changes:\n%s", len(last.Changes), changesText(last.Changes[:min(10, len(last.Changes))]))
	}
	if fmt.Sprint(last.Unmapped) != fmt.Sprint(unowned) {
		t.Fatalf("unmapped = %v\nwant %v", last.Unmapped, unowned)
	}
	var written int
	for _, r := range results {
		written += len(r.Changes)
	}
	if n := rowCount(t, conn, db); n != uint64(written) {
		t.Fatalf("account_history has %d rows, syncs reported %d changes", n, written)
	}

	// Every project, every hour from two days before the window to its end.
	tl, err := accounts.LoadTimelines(t.Context(), chstore.New(conn, db), nil, t2.Add(time.Hour), "free")
	if err != nil {
		t.Fatal(err)
	}
	checked, projects := 0, 0
	for _, c := range s.customers {
		for _, p := range c.projects {
			projects++
			for hr := w.Add(-72 * time.Hour); hr.Before(t2); hr = hr.Add(time.Hour) {
				if got, want := tl.At(p, hr), c.expected(p, hr); got.CustomerID != want.CustomerID || got.Plan != want.Plan || got.Default != want.Default || !got.Since.Equal(want.Since) {
					t.Fatalf("%s at %s = %+v\nwant %+v\ntruth %+v\nhistory %+v", p, hr.Format(time.RFC3339), got, want, c.truth, tl.History(p))
				}
				checked++
			}
		}
	}
	t.Logf("%d projects, %d project-hours match the truth", projects, checked)

	// The upgrade at 14:00:00 owns the 14:00 bucket; one at 14:20:07 starts with 15:00.
	for _, tc := range []struct {
		who      []*scenarioCustomer
		hour     time.Time
		newPlan  bool
		describe string
	}{
		{s.onHour, upgradeOnHour.Add(-time.Hour), false, "13:00 before an upgrade at 14:00"},
		{s.onHour, upgradeOnHour, true, "14:00 with an upgrade at 14:00"},
		{s.onHour, upgradeOnHour.Add(time.Hour), true, "15:00 after an upgrade at 14:00"},
		{s.midHour, upgradeOnHour, false, "14:00 with an upgrade at 14:20:07"},
		{s.midHour, upgradeOnHour.Add(time.Hour), true, "15:00 after an upgrade at 14:20:07"},
	} {
		var ids []string
		for _, c := range tc.who {
			ids = append(ids, c.projects[0])
		}
		// The same question as one query on ClickHouse.
		at, err := chstore.New(conn, db).At(t.Context(), ids, tc.hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tc.who {
			var old, upgraded string
			for i, tr := range c.truth {
				if tr.at.Equal(upgradeOnHour) || tr.at.Equal(upgradeMidHour) {
					old, upgraded = c.truth[i-1].plan, tr.plan
				}
			}
			want := old
			if tc.newPlan {
				want = upgraded
			}
			if got := at[c.projects[0]].Plan; got != want || tl.At(c.projects[0], tc.hour).Plan != want {
				t.Fatalf("%s: customer %d has %q (timeline %q), want %q (old %s, new %s)", tc.describe, c.n, got, tl.At(c.projects[0], tc.hour).Plan, want, old, upgraded)
			}
		}
	}

	// Requests of a sync: list pages of 100, subscriptions of every status, nothing else.
	pages := map[string]int{}
	for _, r := range fake.Requests() {
		pages[r.Path]++
		if r.Method != "GET" || r.Status != 200 || r.Query.Get("limit") != "100" {
			t.Fatalf("request %s %s?%s: status %d", r.Method, r.Path, r.Query.Encode(), r.Status)
		}
		if r.Path == "/v1/subscriptions" && r.Query.Get("status") != "all" {
			t.Fatalf("subscriptions listed without status=all: %v", r.Query)
		}
	}
	if pages["/v1/customers"] != 50 || pages["/v1/subscription_items"] != 1 || pages["/v1/products"] != 1 || len(pages) != 4 {
		t.Fatalf("pages per list: %v", pages)
	}
	for object, want := range map[string]float64{"customers": 1, "products": 1, "subscription_items": 0} {
		if got := metrictest.Value(t, reg, "neonmeter_accounts_stripe_retries_total", map[string]string{"object": object}); got != want {
			t.Errorf("retries of %s pages = %v, want %v", object, got, want)
		}
	}
	// Two 503s, and a dropped connection that Go's transport may already retry by itself (a
	// GET on a reused connection) before the sync sees it.
	if got := metrictest.Value(t, reg, "neonmeter_accounts_stripe_retries_total", map[string]string{"object": "subscriptions"}); got < 2 || got > 3 {
		t.Errorf("retries of subscription pages = %v, want 2 or 3", got)
	}
	if got := metrictest.Value(t, reg, "neonmeter_accounts_sync_runs_total", map[string]string{"result": "success"}); got != 4 {
		t.Errorf("successful runs = %v", got)
	}
	if got := metrictest.Value(t, reg, "neonmeter_accounts_changes_recorded_total", map[string]string{"source": "stripe"}); got != float64(written) {
		t.Errorf("changes recorded = %v, want %d", got, written)
	}
	if got := metrictest.Value(t, reg, "neonmeter_accounts_projects", map[string]string{"state": "unmapped"}); got != 40 {
		t.Errorf("unmapped projects gauge = %v", got)
	}
}
