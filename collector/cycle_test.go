package collector_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// fleetOrgs are the collector's orgs for simulated ones, on their route.
func fleetOrgs(orgs ...sim.Org) []collector.FleetOrg {
	out := make([]collector.FleetOrg, len(orgs))
	for i, o := range orgs {
		out[i] = collector.FleetOrg{ID: o.ID, Endpoint: collector.EndpointV2}
		if o.Legacy {
			out[i].Endpoint = collector.EndpointLegacy
		}
	}
	return out
}

// cycler returns a budgeted Fleet of the orgs on the fleet's client, database and clock: calls
// of 5 projects, budget calls a cycle.
func (f *fleet) cycler(t testing.TB, budget int, edit func(*collector.FleetConfig), orgs ...sim.Org) *collector.Fleet {
	t.Helper()
	cfg := collector.FleetConfig{
		Orgs: fleetOrgs(orgs...), Neon: f.Client, Store: f.store(), CallsPerCycle: budget, BatchSize: 5,
		Lookback: 48 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := collector.NewFleet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// progress reads every project's stored progress of the org.
func (f *fleet) progress(t testing.TB, orgID string) map[string]collector.ProjectProgress {
	t.Helper()
	out := map[string]collector.ProjectProgress{}
	err := f.store().ScanProgress(context.Background(), orgID, func(p collector.ProjectProgress) error {
		out[p.ProjectID] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastActive reads compute_last_active_at of every listed project of the org.
func (f *fleet) lastActive(t testing.TB, orgID string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for page, err := range f.Client.ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: orgID, Limit: 400}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Projects {
			out[p.ID] = p.ComputeLastActiveAt
		}
	}
	return out
}

// activeNow lists the org's projects the issue calls active: Neon saw a compute of it active
// since its last collected hour (at that hour only if the list moved since its last collection).
func (f *fleet) activeNow(t testing.TB, org sim.Org) []string {
	t.Helper()
	prog, cla := f.progress(t, org.ID), f.lastActive(t, org.ID)
	var out []string
	for id, a := range cla {
		p := prog[id]
		if !a.IsZero() && !a.Before(p.CompleteThrough) && (a.After(p.CompleteThrough) || a.After(p.LastActiveAt)) {
			out = append(out, id)
		}
	}
	return out
}

// cycle runs one cycle and fails the test on an error.
func cycle(t testing.TB, c *collector.Fleet) collector.CycleSummary {
	t.Helper()
	sum, err := c.Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// tier finds an org's tier in a summary.
func tier(t testing.TB, sum collector.CycleSummary, orgID string, tr collector.Tier) collector.TierFreshness {
	t.Helper()
	for _, f := range sum.Tiers {
		if f.OrgID == orgID && f.Tier == tr {
			return f
		}
	}
	t.Fatalf("no %v tier of org %s in %+v", tr, orgID, sum.Tiers)
	return collector.TierFreshness{}
}

// An idle project that becomes active is collected in the next cycle, when the budget covers
// the active tier but not the whole fleet.
func TestCycle_ActiveProjectCollectedInTheNextCycle(t *testing.T) {
	f := newFleet(t, 400)
	org := f.Org(t, "launch")
	cycle(t, f.cycler(t, 1000, nil, org)) // every project complete through 12:00
	t0 := f.Clock.Now().Truncate(time.Hour)
	f.Clock.Add(time.Hour)

	cla := f.lastActive(t, org.ID)
	idle := ""
	for _, id := range org.ProjectIDs {
		if !cla[id].After(t0.Add(-time.Hour)) {
			idle = id
			break
		}
	}
	if idle == "" || !f.Sim.TryWake(idle) {
		t.Fatalf("no idle project to wake (%q)", idle)
	}
	for step := range 2 {
		active := f.activeNow(t, org)
		budget := (len(active) + 4) / 5
		if budget*5 >= len(org.ProjectIDs) {
			t.Fatalf("step %d: %d active projects of %d: the budget would cover everyone", step, len(active), len(org.ProjectIDs))
		}
		sum := cycle(t, f.cycler(t, budget, nil, org))
		last := f.Clock.Now().Truncate(time.Hour)
		prog := f.progress(t, org.ID)
		behind := 0
		for _, id := range org.ProjectIDs {
			if !prog[id].CompleteThrough.Equal(last) {
				behind++
			}
		}
		for _, id := range active {
			if !prog[id].CompleteThrough.Equal(last) {
				t.Fatalf("step %d: active project %s complete through %v, want %v", step, id, prog[id].CompleteThrough, last)
			}
		}
		if !strings.Contains(strings.Join(active, ","), idle) {
			t.Fatalf("step %d: the woken project %s is not active (list says %v)", step, idle, f.lastActive(t, org.ID)[idle])
		}
		if behind == 0 || sum.Calls != budget {
			t.Fatalf("step %d: %d projects behind, %d calls of %d: the budget did not bind", step, behind, sum.Calls, budget)
		}
		if a := tier(t, sum, org.ID, collector.TierActive); a.Projects != len(active) || a.Age != f.Clock.Now().Sub(last) {
			t.Fatalf("step %d: active tier %+v, want %d projects complete through %v", step, a, len(active), last)
		}
		t.Logf("step %d: %d active projects collected in %d calls, %d of %d projects left behind", step, len(active), budget, behind, len(org.ProjectIDs))
		f.Clock.Add(time.Hour) // the woken compute ran in the hour just collected: the next cycle takes it
	}
	w := collector.Window{From: t0.Add(-47 * time.Hour), To: f.Clock.Now().Add(-time.Hour).Truncate(time.Hour)}
	sub := sim.Org{ID: org.ID, ProjectIDs: []string{idle}}
	f.Clock.Add(-time.Hour) // the clock of the last collection: its provisional values are the truth
	f.assertExact(t, sub, w, neon.V2Metrics())
}

// With a budget just above the active tier, the rolling share still reaches every idle
// project well before its hours leave Neon's 168-hour window, and what was collected is exact.
func TestCycle_IdleProjectsCollectedByRollingWithinTheHorizon(t *testing.T) {
	f := newFleet(t, 200)
	orgs := []sim.Org{f.Org(t, "launch"), f.Org(t, "scale"), f.Org(t, "legacy")}
	start := f.Clock.Now().Truncate(time.Hour)
	worst := time.Duration(0)
	for c := range 30 {
		calls := 1 // the rolling share: one call a cycle
		for _, o := range orgs {
			calls += (len(f.activeNow(t, o)) + 4) / 5
		}
		sum := cycle(t, f.cycler(t, calls, nil, orgs...))
		if sum.PastHorizon != 0 || sum.Calls > calls {
			t.Fatalf("cycle %d: %d projects past the horizon, %d calls of %d", c, sum.PastHorizon, sum.Calls, calls)
		}
		for _, o := range orgs {
			worst = max(worst, tier(t, sum, o.ID, collector.TierRolling).Age)
		}
		f.Clock.Add(time.Hour)
	}
	t.Logf("worst age of the rolling tier's newest complete hour over 30 cycles: %v", worst)
	if worst <= 2*time.Hour || worst >= 48*time.Hour {
		t.Fatalf("rolling tier lagged at most %v: want some lag (a thin rolling share) yet far inside Neon's 168 h", worst)
	}
	for _, o := range orgs {
		for id, p := range f.progress(t, o.ID) {
			if f.Clock.Now().Sub(p.CompleteThrough) >= 48*time.Hour {
				t.Errorf("project %s complete only through %v", id, p.CompleteThrough)
			}
		}
	}
	// One cycle with room for everyone re-reads the last 48 h; everything since the first
	// cycle's start is then exact.
	f.Clock.Add(-time.Hour)
	cycle(t, f.cycler(t, 1000, nil, orgs...))
	w := collector.Window{From: start.Add(-48 * time.Hour), To: f.Clock.Now().Truncate(time.Hour)}
	for _, o := range orgs {
		metrics := neon.V2Metrics()
		if o.Legacy {
			metrics = neon.LegacyMetrics()
		}
		f.assertExact(t, o, w, metrics)
	}
}

// Every HTTP attempt counts against the cycle's budget, 429s and their retries included: Neon
// never sees more consumption calls than the budget, and a call cut short marks nothing.
func TestCycle_BudgetNeverExceededUnder429s(t *testing.T) {
	f := newFleet(t, 200)
	orgs := []sim.Org{f.Org(t, "launch"), f.Org(t, "scale")}
	f.Sim.SetFaults(sim.Faults{Rate429: 0.3, Rate503: 0.1, Seed: 5})
	reg := prometheus.NewRegistry()
	m, err := collector.NewMetrics(reg, f.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 8
	c := f.cycler(t, budget, func(c *collector.FleetConfig) { c.Metrics = m }, orgs...)
	cut, calls, checked := 0, 0, 0
	for i := range 12 {
		before := f.Sim.Stats()
		sum := cycle(t, c)
		sent := f.Sim.Stats().ConsumptionRequests - before.ConsumptionRequests
		if sent > budget || int64(sum.Calls) != sent {
			t.Fatalf("cycle %d: Neon saw %d consumption calls, the cycle counted %d, budget %d", i, sent, sum.Calls, budget)
		}
		calls += sum.Calls
		if sum.Collected < sum.Batches {
			cut++
		}
		checked += f.assertProgressBacked(t, orgs)
	}
	if f.Sim.Stats().Faults == 0 || cut == 0 || checked == 0 {
		t.Fatalf("%d faults, %d cycles cut short by retries, %d hours checked: the test proves nothing", f.Sim.Stats().Faults, cut, checked)
	}
	if got := metrictest.Value(t, reg, "neonmeter_collector_cycle_calls_total", nil); got != float64(calls) {
		t.Fatalf("neonmeter_collector_cycle_calls_total = %v, want %d", got, calls)
	}
	if got := metrictest.Value(t, reg, "neonmeter_collector_cycle_budget_calls", nil); got != budget {
		t.Fatalf("neonmeter_collector_cycle_budget_calls = %v", got)
	}
	if got := metrictest.Value(t, reg, "neonmeter_collector_tier_projects", map[string]string{"org_id": orgs[0].ID, "tier": "rolling"}); got <= 0 {
		t.Fatalf("rolling projects of %s = %v", orgs[0].ID, got)
	}
	metrictest.Value(t, reg, "neonmeter_collector_tier_freshness_seconds", map[string]string{"org_id": orgs[1].ID, "tier": "active"})
	t.Logf("12 cycles of %d calls under 30 %% 429s and 10 %% 503s: %d calls sent, %d cycles cut short", budget, calls, cut)
}

// assertProgressBacked checks that progress never runs ahead of the facts: for every project
// with progress, every hour of the last 48 up to its complete-through is stored exactly as Neon
// reports it now (the clock has not moved since it was collected). It returns the hours checked.
func (f *fleet) assertProgressBacked(t *testing.T, orgs []sim.Org) int {
	t.Helper()
	last := f.Clock.Now().Truncate(time.Hour)
	from := last.Add(-48 * time.Hour)
	checked := 0
	for _, o := range orgs {
		metrics := neon.V2Metrics()
		if o.Legacy {
			metrics = neon.LegacyMetrics()
		}
		stored := f.hourly(t, o.ID, from, last)
		bad := 0
		for id, p := range f.progress(t, o.ID) {
			for h := from; h.Before(p.CompleteThrough); h = h.Add(time.Hour) {
				checked++
				for _, m := range metrics {
					key := id + "/" + m + "/" + h.Format(time.RFC3339)
					if want := uint64(f.Sim.Value(id, m, h)); stored[key] != want {
						if bad < 5 {
							t.Errorf("project %s complete through %v: %s at %v stored %d, Neon reports %d", id, p.CompleteThrough, m, h, stored[key], want)
						}
						bad++
					}
				}
			}
		}
		if bad > 0 {
			t.Fatalf("org %s: %d hours before a project's complete-through are not stored as reported", o.ID, bad)
		}
	}
	return checked
}

// hourly reads the org's usage_hourly rows of [from, to), keyed project/metric/hour.
func (f *fleet) hourly(t *testing.T, orgID string, from, to time.Time) map[string]uint64 {
	t.Helper()
	q := schema.Query{Name: "test.hourly", Kind: schema.KindSelect, Args: []any{orgID, from.UTC(), to.UTC()},
		SQL: `SELECT project_id, metric, hour, value FROM {db}.usage_hourly WHERE org_id = ? AND hour >= ? AND hour < ?`}
	out := map[string]uint64{}
	err := q.Each(context.Background(), f.Conn, f.DB, func(row schema.Row) error {
		var (
			project, metric string
			hour            time.Time
			value           uint64
		)
		err := row.Scan(&project, &metric, &hour, &value)
		out[project+"/"+metric+"/"+hour.UTC().Format(time.RFC3339)] = value
		return err
	})
	if err != nil {
		t.Fatalf("hourly usage: %v", err)
	}
	return out
}

// Two cycles running at once (an operator's collect beside serve) write the same facts: the
// result is exact, and a third cycle finds nothing to write.
func TestCycle_OverlappingCyclesAreIdempotent(t *testing.T) {
	f := newFleet(t, 200)
	orgs := []sim.Org{f.Org(t, "scale"), f.Org(t, "legacy")}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = f.cycler(t, 1000, nil, orgs...).Cycle(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	third := cycle(t, f.cycler(t, 1000, nil, orgs...))
	if third.RowsWritten != 0 || third.Revisions != 0 || third.ValuesFetched == 0 {
		t.Fatalf("third cycle wrote %d rows and %d revisions of %d values: want nothing", third.RowsWritten, third.Revisions, third.ValuesFetched)
	}
	last := f.Clock.Now().Truncate(time.Hour)
	w := collector.Window{From: last.Add(-48 * time.Hour), To: last}
	f.assertExact(t, orgs[0], w, neon.V2Metrics())
	f.assertExact(t, orgs[1], w, neon.LegacyMetrics())
	for _, o := range orgs {
		for id, p := range f.progress(t, o.ID) {
			if !p.CompleteThrough.Equal(last) {
				t.Fatalf("project %s complete through %v, want %v", id, p.CompleteThrough, last)
			}
		}
	}
}

// An org Neon refuses fails alone; each org gets one run per cycle and its watermark is the
// oldest complete hour among its listed projects; a deleted project is no longer scheduled.
func TestCycle_RunsWatermarksAndDeletedProjects(t *testing.T) {
	f := newFleet(t, 200)
	launch, free := f.Org(t, "launch"), f.Org(t, "free")
	ctx := context.Background()
	c := f.cycler(t, 1000, nil, launch, free)
	sum, err := c.Cycle(ctx)
	if err == nil || !strings.Contains(err.Error(), free.ID) || !strings.Contains(err.Error(), "no consumption history") {
		t.Fatalf("cycle with the free org: %v, want an error naming %s", err, free.ID)
	}
	last := f.Clock.Now().Truncate(time.Hour)
	if sum.Orgs[0].Outcome != collector.OutcomeSuccess || sum.Orgs[1].Outcome != collector.OutcomeFailed {
		t.Fatalf("outcomes %v, %v: want launch success, free failed", sum.Orgs[0].Outcome, sum.Orgs[1].Outcome)
	}
	wm, ok, err := f.store().Watermark(ctx, collector.Feed{OrgID: launch.ID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly})
	if err != nil || !ok || !wm.Equal(last) {
		t.Fatalf("launch watermark %v, %v, %v; want %v", wm, ok, err, last)
	}

	gone := launch.ProjectIDs[3]
	if !f.Sim.DeleteProject(gone) {
		t.Fatal("delete")
	}
	f.Clock.Add(time.Hour)
	// Enforcement flags a project that ran no compute since: it is the at-risk tier.
	risky := ""
	for id, a := range f.lastActive(t, launch.ID) {
		if id != gone && !a.After(last.Add(-time.Hour)) {
			risky = id
			break
		}
	}
	flag := schema.Query{Name: "test.flag_at_risk", Kind: schema.KindInsert,
		SQL:  "INSERT INTO {db}.enforcement_at_risk (project_id, org_id, at_risk, reason, updated_at, run_id)",
		Rows: [][]any{{risky, launch.ID, uint8(1), "warning", f.Clock.Now().UTC(), "enforce-test"}}}
	if err := flag.Insert(ctx, f.Conn, f.DB); err != nil || risky == "" {
		t.Fatalf("flag %q at risk: %v", risky, err)
	}
	sum, err = c.Cycle(ctx)
	if err == nil {
		t.Fatal("the free org failed silently")
	}
	if got := sum.Orgs[0].Projects; got != len(launch.ProjectIDs)-1 {
		t.Fatalf("launch listed %d projects, want %d", got, len(launch.ProjectIDs)-1)
	}
	prog := f.progress(t, launch.ID)
	if !prog[gone].CompleteThrough.Equal(last) {
		t.Fatalf("deleted project complete through %v, want it left at %v", prog[gone].CompleteThrough, last)
	}
	wm, _, _ = f.store().Watermark(ctx, collector.Feed{OrgID: launch.ID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly})
	if !wm.Equal(last.Add(time.Hour)) {
		t.Fatalf("watermark %v, want %v: the deleted project does not hold it back", wm, last.Add(time.Hour))
	}
	runs, err := f.store().Runs(ctx, launch.ID, collector.EndpointV2, time.Time{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("launch runs %+v, %v: want one per cycle", runs, err)
	}
	for _, r := range runs {
		if r.Outcome != collector.OutcomeSuccess || !strings.HasPrefix(r.RunID, "cycle-") || r.Projects == 0 || !r.WindowTo.After(r.WindowFrom) {
			t.Fatalf("run %+v", r)
		}
	}
	if runs[1].WindowTo != last.Add(time.Hour) {
		t.Fatalf("second run's window ends %v, want the watermark %v", runs[1].WindowTo, last.Add(time.Hour))
	}

	if r := tier(t, sum, launch.ID, collector.TierAtRisk); r.Projects != 1 || r.Planned != 1 || !r.Oldest.Equal(last.Add(time.Hour)) {
		t.Fatalf("at-risk tier %+v: want the flagged project, collected", r)
	}
	fresh, err := collector.ReadFreshness(ctx, f.store(), collector.FreshnessQuery{Orgs: fleetOrgs(launch), Now: f.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	age := f.Clock.Now().Sub(last.Add(time.Hour))
	want := map[collector.Tier]int{collector.TierRolling: len(launch.ProjectIDs), collector.TierAtRisk: 1}
	for _, tf := range fresh {
		if n, ok := want[tf.Tier]; ok && (tf.Age != age || tf.Projects != n) {
			t.Fatalf("stored %v freshness %+v, want %d projects aged %v", tf.Tier, tf, n, age)
		}
	}
	if len(fresh) != 3 {
		t.Fatalf("stored freshness %+v: want active, at_risk and rolling (no period is closing)", fresh)
	}
}

// Right after a billing period ends, completing every project's hours of the closed period
// comes before everything else, active projects included.
func TestCycle_ClosingPeriodComesFirst(t *testing.T) {
	f := &fleet{testfleet.New(t, testfleet.Options{Projects: 200, Now: time.Date(2026, 11, 30, 22, 40, 0, 0, time.UTC)})}
	org := f.Org(t, "scale")
	monthEnd := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC) }
	withPeriods := func(c *collector.FleetConfig) { c.PeriodEnd, c.PeriodGrace = monthEnd, time.Hour }
	cycle(t, f.cycler(t, 1000, withPeriods, org)) // complete through 22:00
	f.Clock.Set(time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC))
	sum := cycle(t, f.cycler(t, 3, withPeriods, org))
	closing := tier(t, sum, org.ID, collector.TierClosing)
	if closing.Projects != len(org.ProjectIDs) || closing.Planned != 15 || sum.Collected != 3 {
		t.Fatalf("closing tier %+v, %d calls collected: want every project closing and 15 collected", closing, sum.Collected)
	}
	if a := tier(t, sum, org.ID, collector.TierActive); a.Projects != 0 {
		t.Fatalf("active tier %+v while a period closes: closing comes first", a)
	}
	n := 0
	for _, p := range f.progress(t, org.ID) {
		if p.CompleteThrough.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			n++
		}
	}
	if n != 15 {
		t.Fatalf("%d projects complete through the period's end, want 15", n)
	}
	// Once the grace has passed the tier is gone.
	f.Clock.Set(time.Date(2026, 12, 1, 1, 20, 0, 0, time.UTC))
	sum = cycle(t, f.cycler(t, 3, withPeriods, org))
	if c := tier(t, sum, org.ID, collector.TierClosing); c.Projects != 0 {
		t.Fatalf("closing tier after the grace: %+v", c)
	}
}

// A cycle whose deadline comes before its budget is spent stops starting calls in time to write
// what it fetched, and ends without failing: the calls it did not make wait for the next cycle.
// On an accelerated clock the deadline is of simulated time: 40 simulated minutes at 60 times
// real speed end as 40 real seconds do.
func TestCycle_StopsBeforeItsDeadlineWithoutFailing(t *testing.T) {
	for _, c := range []struct {
		name     string
		deadline time.Duration
		speed    float64
	}{
		{"real clock", 40 * time.Second, 1},
		{"accelerated clock", 40 * time.Minute, 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFleet(t, 200)
			orgs := []sim.Org{f.Org(t, "launch"), f.Org(t, "scale")}
			// Every request takes 3 s: calls stop with 3 s left (the slowest call), after about
			// 12 of the plan's 30-odd.
			f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 3 * time.Second, Seed: 3})
			real := 40 * time.Second
			cy := f.cycler(t, 1000, func(fc *collector.FleetConfig) { fc.Deadline, fc.Speed = c.deadline, c.speed }, orgs...)
			start := time.Now()
			sum := cycle(t, cy)
			if took := time.Since(start); took >= real {
				t.Fatalf("the cycle took %v, past its %v deadline (%v of real time)", took, c.deadline, real)
			}
			if sum.Calls == 0 || sum.Collected >= sum.Batches || sum.Calls > 15 {
				t.Fatalf("%d calls, %d of %d batches collected: want some calls, stopped well before the plan's end", sum.Calls, sum.Collected, sum.Batches)
			}
			if f.assertProgressBacked(t, orgs) == 0 {
				t.Fatal("no hour was checked: the test proves nothing")
			}
		})
	}
}

// Hours read within Neon's provisional window are collected but not final: final-through stays
// that far behind complete-through, and a visit after they settled re-reads them, stores their
// final values and moves final-through past them, even with a rolling re-read shorter than the
// provisional window.
func TestCycle_ProvisionalHoursFinalOnlyOnceReadAgain(t *testing.T) {
	f := newFleet(t, 20)
	org := f.Org(t, "launch")
	f.Clock.Set(f.Clock.Now().Truncate(time.Hour).Add(30 * time.Minute))
	shortLookback := func(c *collector.FleetConfig) { c.Lookback = time.Hour }
	finalOf := func(wantCT, wantFT time.Time) {
		t.Helper()
		prog, err := f.store().ProgressOf(context.Background(), org.ID, org.ProjectIDs)
		if err != nil || len(prog) != len(org.ProjectIDs) {
			t.Fatalf("progress of %d projects: %d rows, %v", len(org.ProjectIDs), len(prog), err)
		}
		for id, p := range prog {
			if !p.CompleteThrough.Equal(wantCT) || !p.FinalThrough.Equal(wantFT) {
				t.Fatalf("project %s complete through %v, final through %v; want %v and %v", id, p.CompleteThrough, p.FinalThrough, wantCT, wantFT)
			}
		}
	}
	t0 := f.Clock.Now().Truncate(time.Hour)
	cycle(t, f.cycler(t, 100, shortLookback, org))
	finalOf(t0, t0.Add(-2*time.Hour))
	provisional := f.hourly(t, org.ID, t0.Add(-2*time.Hour), t0)

	f.Clock.Add(3 * time.Hour)
	cycle(t, f.cycler(t, 100, shortLookback, org))
	t1 := t0.Add(3 * time.Hour)
	finalOf(t1, t1.Add(-2*time.Hour))
	stored, changed := f.hourly(t, org.ID, t0.Add(-2*time.Hour), t0), 0
	for _, id := range org.ProjectIDs {
		for _, m := range neon.V2Metrics() {
			for h := t0.Add(-2 * time.Hour); h.Before(t0); h = h.Add(time.Hour) {
				key := id + "/" + m + "/" + h.Format(time.RFC3339)
				if want := uint64(f.Sim.Value(id, m, h)); stored[key] != want {
					t.Fatalf("%s: stored %d after the re-read, Neon's final value is %d", key, stored[key], want)
				}
				if stored[key] != provisional[key] {
					changed++
				}
			}
		}
	}
	if changed == 0 {
		t.Fatal("no provisional value changed when read final: the test proves nothing")
	}
}

// A project that stays active is collected every cycle through the provisional window only;
// Neon's revisions of its older hours reach it through a deep call once a lookback after its
// last one, as the rolling sweep's calls give them to idle projects.
func TestCycle_LateRevisionsOfAnActiveProjectCollected(t *testing.T) {
	f := newFleet(t, 20)
	org := f.Org(t, "launch")
	lookback := 6 * time.Hour
	edit := func(c *collector.FleetConfig) { c.Lookback = lookback }
	cycle(t, f.cycler(t, 100, edit, org)) // every project collected, deep (rolling)
	t0 := f.Clock.Now().Truncate(time.Hour)
	if f.Sim.Revise(5*time.Hour) == 0 {
		t.Fatal("the simulator revised nothing")
	}
	id := org.ProjectIDs[0]
	for step := range 7 {
		f.Clock.Add(time.Hour)
		if !f.Sim.TryWake(id) {
			t.Fatalf("step %d: project %s could not be woken", step, id)
		}
		cycle(t, f.cycler(t, 100, edit, org))
		prog, err := f.store().ProgressOf(context.Background(), org.ID, []string{id})
		if err != nil || prog[id].Tier != collector.TierActive {
			t.Fatalf("step %d: project %s progress %+v, %v: want it collected as active", step, id, prog[id], err)
		}
	}
	stored, revised := f.hourly(t, org.ID, t0.Add(-5*time.Hour), t0.Add(-2*time.Hour)), 0
	for _, m := range neon.V2Metrics() {
		for h := t0.Add(-5 * time.Hour); h.Before(t0.Add(-2 * time.Hour)); h = h.Add(time.Hour) {
			key := id + "/" + m + "/" + h.Format(time.RFC3339)
			if want := uint64(f.Sim.Value(id, m, h)); stored[key] != want {
				t.Errorf("%s: stored %d, Neon revised it to %d", key, stored[key], want)
			} else if want != 0 {
				revised++
			}
		}
	}
	if revised == 0 {
		t.Fatal("no non-zero value in the revised hours: the test proves nothing")
	}
}
