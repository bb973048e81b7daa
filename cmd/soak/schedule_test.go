package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/simclock"
	"time"
)

func weekPlan() Plan {
	start := time.Date(2026, 10, 28, 12, 0, 0, 0, time.UTC)
	return Plan{Start: start, End: start.Add(7 * 24 * time.Hour), Replicas: 3, Kills: 50, Quiet: quiet}
}

// The schedule is a pure function of the seed: the same seed draws the same events, another
// seed others; every event falls inside the span, after its first two hours and before the
// quiet end, in time order; it holds the kills asked for (each of an existing replica), one
// SIGSTOP per job, two operator pushes and enforcement cycles, a revision 48 h late and, per
// day, each Neon and Stripe fault and each change of the world.
func TestSchedule_PureAndComplete(t *testing.T) {
	p := weekPlan()
	a, b := Schedule(7, p), Schedule(7, p)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew two schedules")
	}
	if slices.Equal(a, Schedule(8, p)) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
	lo, hi := p.Start.Add(2*time.Hour), p.End.Add(-p.Quiet)
	for i, e := range a {
		if e.At.Before(lo) || !e.At.Before(hi) {
			t.Errorf("%s: outside [%s, %s)", e, lo, hi)
		}
		if i > 0 && e.At.Before(a[i-1].At) {
			t.Errorf("%s comes after %s", e, a[i-1])
		}
		if e.Kind == KindKill && (e.Replica < 0 || e.Replica >= p.Replicas) {
			t.Errorf("%s: no such replica", e)
		}
	}
	n := Count(a)
	days := int(hi.Sub(lo) / (24 * time.Hour))
	want := map[Kind]int{KindKill: 50, KindStop: 2, KindManualPush: 2, KindManualEnf: 2, KindNeon429: days, KindNeon5xx: days,
		KindRepeatPage: days, KindStripeDown: days, KindStripeLost: days, KindRevise: days, KindPlanChange: days, KindDelete: days,
		KindNewCustomer: days}
	for k, w := range want {
		if n[k] != w {
			t.Errorf("%s: %d events, want %d", k, n[k], w)
		}
	}
	if n[KindCHDown] != 0 {
		t.Errorf("a ClickHouse replica stopped on one server: %d", n[KindCHDown])
	}
	if !slices.ContainsFunc(a, func(e Event) bool { return e.Kind == KindRevise && e.Span == 48*time.Hour }) {
		t.Error("no revision 48 h late")
	}
	p.Cluster = true
	if c := Count(Schedule(7, p)); c[KindCHDown] != 1 {
		t.Errorf("on a cluster: %d ClickHouse replicas stopped, want 1", c[KindCHDown])
	}
	if s := Schedule(7, Plan{Start: p.Start, End: p.Start.Add(3 * time.Hour), Quiet: quiet}); s != nil {
		t.Errorf("a span shorter than its margins drew %d events", len(s))
	}
}

// The mutation check catches a change applied twice: an endpoint suspended twice with no change
// of its project between, or the same project change twice in a row; the same requests again
// after the project changed (suspended, restored, suspended) and a retry of a failed one pass.
func TestCheckMutations_CatchesARepeat(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	suspend, restore := `{"project":{"settings":{"quota":{"active_time_seconds":1}}}}`, `{"project":{"settings":{"quota":{"active_time_seconds":0}}}}`
	var w world
	at := 0
	add := func(method, path, body string, status int) {
		at++
		w.mutations.add(mutation{at: t0.Add(time.Duration(at) * time.Minute), method: method, path: path, body: body, status: status})
	}
	for _, body := range []string{suspend, restore, suspend} {
		add("PATCH", "/api/v2/projects/p1", body, 200)
		add("POST", "/api/v2/projects/p1/endpoints/ep1/suspend", "", 200)
	}
	add("POST", "/api/v2/projects/p2/endpoints/ep2/suspend", "", 500)
	add("POST", "/api/v2/projects/p2/endpoints/ep2/suspend", "", 200)
	if c := w.checkMutations(); c.bad != 0 || c.compared != 7 {
		t.Fatalf("a clean log: %d of %d flagged: %v", c.bad, c.compared, c.examples)
	}
	add("POST", "/api/v2/projects/p1/endpoints/ep1/suspend", "", 200)
	if c := w.checkMutations(); c.bad != 1 {
		t.Fatalf("an endpoint suspended twice: %d flagged, want 1: %v", c.bad, c.examples)
	}
	add("PATCH", "/api/v2/projects/p1", suspend, 200)
	if c := w.checkMutations(); c.bad != 2 {
		t.Fatalf("a suspension applied twice: %d flagged, want 2: %v", c.bad, c.examples)
	}
}

// Flags: the defaults are the month; bad values are all named at once.
func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Days != 30 || o.Projects != 20_000 || o.Replicas != 3 || o.Kills < 50 {
		t.Errorf("defaults: %+v, want the month (30 days, 20,000 projects, 3 replicas, at least 50 kills)", o)
	}
	_, err = parseFlags([]string{"--days", "1", "--replicas", "0", "--hour", "1ms", "--settle", "2h"}, nil)
	for _, flag := range []string{"--days", "--replicas", "--hour", "--settle"} {
		if err == nil || !strings.Contains(err.Error(), flag+" ") {
			t.Errorf("bad %s not named: %v", flag, err)
		}
	}
}

// serve's cycle on the shared clock: every 15 minutes when a simulated quarter hour leaves a
// cycle its real cost, else the shortest interval dividing a day that does; the schedule fires
// at that interval and the deadline fits inside it.
func TestCycle_FitsTheRealCost(t *testing.T) {
	for _, tc := range []struct {
		hour time.Duration
		want time.Duration
		cron string
	}{
		{time.Hour, 15 * time.Minute, "*/15 * * * *"},
		{time.Minute, 15 * time.Minute, "*/15 * * * *"},
		{20 * time.Second, time.Hour, "0 */1 * * *"},
		{2 * time.Second, 8 * time.Hour, "0 */8 * * *"},
		{500 * time.Millisecond, 24 * time.Hour, "0 0 * * *"},
	} {
		w := &world{}
		c, err := simclock.New(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Now(), tc.hour)
		if err != nil {
			t.Fatal(err)
		}
		w.clock = c
		every, cron := w.cycle()
		if every != tc.want || cron != tc.cron || c.Real(every) < cycleRealCost && every != 15*time.Minute && every != 24*time.Hour {
			t.Errorf("hour %s: every %s (%q), want %s (%q)", tc.hour, every, cron, tc.want, tc.cron)
		}
	}
}
