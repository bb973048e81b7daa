package enforcement_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// Tests of enforcement that holds when Neon, customers and data misbehave (issue 10, item 9).
// Each one failed on the code before the fix it names.

// byUsage returns the projects with usage, the most first (ties by id).
func byUsage(usage map[string]uint64) []string {
	var ids []string
	for id, u := range usage {
		if u > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		return usage[ids[i]] > usage[ids[j]] || usage[ids[i]] == usage[ids[j]] && ids[i] < ids[j]
	})
	return ids
}

// topOverFree collects the fleet and puts its n largest users on free since yesterday, with
// free's limit at the nth one's usage (the other plans' out of reach): those n are over. It
// returns them, the most first, and the catalog.
func (f *fixture) topOverFree(t *testing.T, n int) ([]string, *plans.Catalog) {
	t.Helper()
	f.collect(t)
	usage := f.usage(t)
	top := byUsage(usage)[:n]
	cat := catalog(t, usage[top[n-1]], 1<<40, 1<<40, 1<<40)
	planOf := map[string]string{}
	for _, id := range top {
		planOf[id] = "free"
	}
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), planOf)
	return top, cat
}

func cycle(t *testing.T, r *enforcement.Reconciler) *enforcement.Report {
	t.Helper()
	rep, err := r.Cycle(context.Background(), enforcement.CycleOptions{})
	if err != nil {
		t.Fatalf("cycle: %v", err)
	}
	return rep
}

func rowOf(rep *enforcement.Report, id string) (enforcement.Row, bool) {
	for _, r := range rep.Rows {
		if r.ProjectID == id {
			return r, true
		}
	}
	return enforcement.Row{}, false
}

func anyActive(t *testing.T, s *sim.Sim, id string) bool {
	t.Helper()
	ps, _ := s.Project(id)
	for _, ep := range ps.Endpoints {
		if ep.Active {
			return true
		}
	}
	return false
}

// TestRecheck_RestartedLaunchComputeIsSuspendedAgainNextCycle: on Launch Neon's counters stay 0
// (the caveat), so the suspension quota never holds and a client connection restarts a
// suspended compute. Its target does not change, so it used to be read again only by the drift
// sampler; now every suspended project is re-checked each cycle from the project list's
// compute_last_active_at (one list page here, for three projects) and the restarted one alone is
// read and suspended again.
func TestRecheck_RestartedLaunchComputeIsSuspendedAgainNextCycle(t *testing.T) {
	fl := testfleet.New(t, testfleet.Options{Projects: 80, Seed: 11, Now: testNow, Sim: func(c *sim.Config) { c.LaunchCaveat = true }})
	f := &fixture{Fleet: fl, org: fl.Org(t, "launch")}
	ids, cat := f.topOverFree(t, 3)
	pol := testPolicy()
	pol.DriftReads = 0 // only the re-check may find the restart
	r := f.reconciler(t, cat, pol, nil)
	cycle(t, r)
	for _, id := range ids {
		if ps, _ := f.Sim.Project(id); ps.QuotaSuspended || anyActive(t, f.Sim, id) || ps.Quota.ActiveTimeSeconds != 1 {
			t.Fatalf("%s after the suspension: quota-held %v (want false: the caveat), quota %+v, a compute running %v",
				id, ps.QuotaSuspended, ps.Quota, anyActive(t, f.Sim, id))
		}
	}

	f.Clock.Add(5 * time.Minute)
	restarted := ids[1]
	if !f.Sim.TryWake(restarted) {
		t.Fatal("a client connection did not restart the suspended launch compute")
	}
	f.Clock.Add(time.Minute)
	rep := cycle(t, r)
	row, _ := rowOf(rep, restarted)
	if anyActive(t, f.Sim, restarted) || !row.Read || len(row.Actions) == 0 || row.Actions[0].Kind != enforcement.ActionSuspendEndpoint {
		t.Fatalf("the restarted compute: running %v, read %v, actions %v; want read and suspended again in the next cycle",
			anyActive(t, f.Sim, restarted), row.Read, row.Actions)
	}
	if rep.Reads != 1 || rep.Rechecked != 3 || rep.RecheckCalls != 1 {
		t.Fatalf("reads %d, re-checked %d in %d calls; want 1 read (the restarted one), 3 re-checked in 1 list page",
			rep.Reads, rep.Rechecked, rep.RecheckCalls)
	}

	// Nothing ran since: the re-check reads nothing.
	f.Clock.Add(5 * time.Minute)
	if rep := cycle(t, r); rep.Reads != 0 || rep.Mutations != 0 || rep.Rechecked != 3 {
		t.Fatalf("quiet cycle: %d reads, %d mutations, %d re-checked; want 0, 0, 3", rep.Reads, rep.Mutations, rep.Rechecked)
	}
}

// deletingNeon deletes a project in the simulator once its endpoints are listed, so the PATCH
// that follows meets a 404.
type deletingNeon struct {
	enforcement.Neon
	sim *sim.Sim
	id  string
}

func (n *deletingNeon) ListEndpoints(ctx context.Context, projectID string) ([]neon.Endpoint, error) {
	eps, err := n.Neon.ListEndpoints(ctx, projectID)
	if projectID == n.id {
		n.sim.DeleteProject(projectID)
	}
	return eps, err
}

// TestGone_DeletedProjectIsRecordedAndSkipped: a project deleted in Neon but still mapped made
// every cycle fail (404 on GET, or on the PATCH when deleted in between). It is now recorded as
// gone (state, one audit row, gauge), never fails the cycle, and is not read again.
func TestGone_DeletedProjectIsRecordedAndSkipped(t *testing.T) {
	f := newFixture(t, 80)
	f.collect(t)
	ids := byUsage(f.usage(t))
	readGone, patchGone := ids[0], ids[1]
	cat := catalog(t, 1<<40, 1<<40, 1<<40, 1<<40)
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), map[string]string{readGone: "free", patchGone: "free"})
	f.Sim.DeleteProject(readGone)
	pol := testPolicy()
	pol.DriftReads = 0
	reg := prometheus.NewRegistry()
	m, err := enforcement.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := enforcement.New(f.config(enforcement.Config{Neon: &deletingNeon{Neon: f.Client, sim: f.Sim, id: patchGone}, Catalog: cat,
		DefaultPlan: "enterprise", Policy: pol, Metrics: m}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 2 {
		rep, err := r.Cycle(ctx, enforcement.CycleOptions{})
		if err != nil {
			t.Fatalf("cycle %d failed: %v", i+1, err)
		}
		if rep.Gone != 2 || rep.Failures != 0 {
			t.Fatalf("cycle %d: %d gone, %d failures; want 2 gone, none failed", i+1, rep.Gone, rep.Failures)
		}
		for _, id := range []string{readGone, patchGone} {
			if row, _ := rowOf(rep, id); row.Outcome != enforcement.OutcomeGone || row.Read != (i == 0) {
				t.Fatalf("cycle %d: %s outcome %q read %v; want gone, read only the first time", i+1, id, row.Outcome, row.Read)
			}
		}
		f.Clock.Add(10 * time.Minute)
	}
	states, err := f.store().States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{readGone, patchGone} {
		audit, err := f.store().AuditOf(ctx, id, 20)
		if err != nil {
			t.Fatal(err)
		}
		gone := 0
		for _, a := range audit {
			if a.Outcome == enforcement.OutcomeGone && a.Action == enforcement.AuditDecision {
				gone++
			}
		}
		if !states[id].Gone || gone != 1 {
			t.Fatalf("%s: state gone %v, %d gone decisions in the audit %+v; want gone and 1", id, states[id].Gone, gone, audit)
		}
	}
	if got := testutil.ToFloat64(mustGauge(t, reg, "neonmeter_enforcement_gone_projects")); got != 2 {
		t.Fatalf("neonmeter_enforcement_gone_projects = %v, want 2", got)
	}
}

// TestBreaker_LatchesUntilAcknowledgedMostOverFirst: a tripped breaker used to let the cap
// through every cycle, chosen by project id, so a bad-data spike was applied in full within a
// few cycles. Now the cap goes to the most over first, and the breaker then holds every new
// suspension until acknowledged; after that the next cap, again the most over.
func TestBreaker_LatchesUntilAcknowledgedMostOverFirst(t *testing.T) {
	f, usage, limit, reg, r := spikeFleet(t)
	var over []string // the most over first
	for _, id := range byUsage(usage) {
		if usage[id] >= limit {
			over = append(over, id)
		}
	}
	suspended := func() []string {
		var out []string
		for _, id := range over {
			if ps, _ := f.Sim.Project(id); ps.QuotaSuspended {
				out = append(out, id)
			}
		}
		return out
	}
	rep := cycle(t, r)
	capN := rep.BreakerCap
	if !rep.BreakerTripped || rep.BreakerLatched || capN == 0 || len(over) <= 2*capN {
		t.Fatalf("first cycle: tripped %v latched %v cap %d, %d over; want a trip, a cap and over twice the cap", rep.BreakerTripped, rep.BreakerLatched, capN, len(over))
	}
	if got := suspended(); strings.Join(got, ",") != strings.Join(over[:capN], ",") {
		t.Fatalf("suspended %v, want the %d most over %v", got, capN, over[:capN])
	}
	f.Clock.Add(10 * time.Minute)
	if rep := cycle(t, r); !rep.BreakerLatched || rep.Mutations != 0 || len(suspended()) != capN {
		t.Fatalf("second cycle: latched %v, %d mutations, %d suspended; want held: none newly suspended", rep.BreakerLatched, rep.Mutations, len(suspended()))
	}
	if got := testutil.ToFloat64(mustGauge(t, reg, "neonmeter_enforcement_breaker_tripped")); got != 1 {
		t.Fatalf("breaker gauge %v while latched, want 1", got)
	}
	trip, ok, err := r.AckBreaker(context.Background())
	if err != nil || !ok || trip.Enforcing != len(over) || trip.Cap != capN {
		t.Fatalf("ack: %+v ok %v err %v", trip, ok, err)
	}
	f.Clock.Add(10 * time.Minute)
	rep = cycle(t, r)
	if got := suspended(); strings.Join(got, ",") != strings.Join(over[:2*capN], ",") || !rep.BreakerTripped || rep.BreakerLatched {
		t.Fatalf("after the ack: suspended %v, want the next %d most over (%v); tripped %v latched %v", got, capN, over[:2*capN], rep.BreakerTripped, rep.BreakerLatched)
	}
	f.Clock.Add(10 * time.Minute)
	if rep := cycle(t, r); !rep.BreakerLatched || len(suspended()) != 2*capN {
		t.Fatalf("the second trip does not hold: latched %v, %d suspended", rep.BreakerLatched, len(suspended()))
	}
	if _, ok, _ := r.AckBreaker(context.Background()); !ok {
		t.Fatal("second ack refused")
	}
	if _, ok, err := r.AckBreaker(context.Background()); ok || err != nil {
		t.Fatalf("acknowledging a breaker that does not hold: ok %v err %v", ok, err)
	}
}

// TestMetrics_AlertSeriesCapKeepsTheMostSevere: with more than 100 projects over, the capped
// per-project alert series used to be the first 100 by id, so the worst offenders could never
// alert; they are now the 100 most over.
func TestMetrics_AlertSeriesCapKeepsTheMostSevere(t *testing.T) {
	f := newFixture(t, 400)
	f.collect(t)
	usage := f.usage(t)
	cat := catalog(t, 1<<40, 1<<40, 1, 1<<40) // everyone on the (alert-only) default plan is over
	reg := prometheus.NewRegistry()
	cycle(t, f.reconciler(t, cat, testPolicy(), reg))
	over := byUsage(usage)
	if len(over) <= enforcement.MaxProjectSeries {
		t.Fatalf("only %d projects over; the test needs more than %d", len(over), enforcement.MaxProjectSeries)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "neonmeter_enforcement_project_over_limit" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "project_id" {
					got = append(got, l.GetValue())
				}
			}
		}
	}
	want := append([]string(nil), over[:enforcement.MaxProjectSeries]...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("series for %d projects:\n%v\nwant the %d most over:\n%v", len(got), got, len(want), want)
	}
}

// findProjects returns scale projects with usage whose state fits keep.
func (f *fixture) findProjects(t *testing.T, usage map[string]uint64, n int, keep func(sim.ProjectState) bool) []string {
	t.Helper()
	var out []string
	for _, id := range byUsage(usage) {
		if ps, _ := f.Sim.Project(id); keep(ps) {
			out = append(out, id)
		}
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("only %d of %d projects fit", len(out), n)
	return nil
}

// TestCap_RunningComputeAbovePlanMaxBroughtDownIdleLeft: computes running above their plan's
// max CU used to keep it. A running one is now brought down to the plan's max; an idle one is
// left (patching it would wake it) and counted, and capped once a connection starts it.
func TestCap_RunningComputeAbovePlanMaxBroughtDownIdleLeft(t *testing.T) {
	f := newFixture(t, 80)
	f.collect(t)
	usage := f.usage(t)
	above := func(ps sim.ProjectState, active bool) bool {
		for _, ep := range ps.Endpoints {
			if ep.Active != active {
				return false
			}
		}
		return len(ps.Endpoints) > 0 && ps.Endpoints[0].MaxCU > 0.5
	}
	running := f.findProjects(t, usage, 1, func(ps sim.ProjectState) bool { return above(ps, true) })[0]
	idle := f.findProjects(t, usage, 1, func(ps sim.ProjectState) bool { return above(ps, false) })[0]
	idleBefore, _ := f.Sim.Project(idle)
	cat := catalog(t, 1<<40, 1<<40, 1<<40, 1<<40)
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), map[string]string{running: "free", idle: "free"})
	pol := testPolicy()
	pol.DriftReads = 0
	r := f.reconciler(t, cat, pol, nil)
	rep := cycle(t, r)
	maxCU := func(id string) []float64 {
		ps, _ := f.Sim.Project(id)
		var out []float64
		for _, ep := range ps.Endpoints {
			out = append(out, ep.MaxCU)
		}
		return out
	}
	for _, m := range maxCU(running) {
		if m > 0.5 {
			t.Fatalf("running computes of %s at max %v CU; the plan allows 0.5", running, maxCU(running))
		}
	}
	if row, _ := rowOf(rep, idle); row.IdleOverMax != len(idleBefore.Endpoints) || rep.IdleOverMax < row.IdleOverMax ||
		maxCU(idle)[0] != idleBefore.Endpoints[0].MaxCU {
		t.Fatalf("idle %s: counted %d (report %d), max CU %v; want %d counted and left at %v", idle, row.IdleOverMax, rep.IdleOverMax,
			maxCU(idle), len(idleBefore.Endpoints), idleBefore.Endpoints[0].MaxCU)
	}
	f.Clock.Add(5 * time.Minute)
	if !f.Sim.TryWake(idle) {
		t.Fatal("a connection did not start the idle compute")
	}
	f.Clock.Add(time.Minute)
	rep = cycle(t, r)
	for _, m := range maxCU(idle) {
		if m > 0.5 {
			t.Fatalf("%s runs now but its computes stay at max %v CU", idle, maxCU(idle))
		}
	}
	if row, _ := rowOf(rep, idle); row.IdleOverMax != 0 || rep.IdleOverMax != 0 {
		t.Fatalf("after capping: %d idle over max counted (report %d), want 0", row.IdleOverMax, rep.IdleOverMax)
	}
}

// TestRestoreAndRelease_GiveBackWhatTheProjectHad: a restore used to raise throttled computes to
// the plan's max CU, and a release cleared Neon's quota entirely (and kept the plan's defaults).
// Both now give back what the project had before enforcement changed it.
func TestRestoreAndRelease_GiveBackWhatTheProjectHad(t *testing.T) {
	f := newFixture(t, 80)
	f.collect(t)
	usage := f.usage(t)
	// A pro project whose running computes' own max is below the plan's 4 CU.
	thr := f.findProjects(t, usage, 1, func(ps sim.ProjectState) bool {
		for _, ep := range ps.Endpoints {
			if !ep.Active || ep.MaxCU >= 4 || ep.MaxCU <= 0.25 {
				return false
			}
		}
		return len(ps.Endpoints) > 0
	})[0]
	sus := f.findProjects(t, usage, 2, func(ps sim.ProjectState) bool { return true })[1]
	if sus == thr {
		sus = f.findProjects(t, usage, 3, func(ps sim.ProjectState) bool { return true })[2]
	}
	ctx := context.Background()
	// The customer's own quota on the free project, set before neonmeter manages it.
	own := neon.Quota{ComputeTimeSeconds: 1 << 40, WrittenDataBytes: 1 << 41}
	if _, _, err := f.Client.UpdateProject(ctx, sus, neon.ProjectUpdate{Quota: &own}); err != nil {
		t.Fatal(err)
	}
	thrBefore, _ := f.Sim.Project(thr)
	susBefore, _ := f.Sim.Project(sus)
	at := plans.PeriodStart(testNow).AddDate(0, 0, -1)
	cat := catalog(t, usage[sus]/2, usage[thr]/2, 1<<40, 1<<40)
	f.assign(t, cat, at, map[string]string{thr: "pro", sus: "free"})
	cycle(t, f.reconciler(t, cat, testPolicy(), nil))
	if ps, _ := f.Sim.Project(thr); ps.Endpoints[0].MaxCU != 0.25 {
		t.Fatalf("%s not throttled: %+v", thr, ps.Endpoints)
	}
	if ps, _ := f.Sim.Project(sus); !ps.QuotaSuspended {
		t.Fatalf("%s not suspended", sus)
	}

	// The pro limit is raised: the throttle is undone to the computes' own ranges.
	f.Clock.Add(10 * time.Minute)
	raised := catalog(t, usage[sus]/2, usage[thr]*10, 1<<40, 1<<40)
	r := f.reconciler(t, raised, testPolicy(), nil)
	cycle(t, r)
	ps, _ := f.Sim.Project(thr)
	for i, ep := range ps.Endpoints {
		if b := thrBefore.Endpoints[i]; ep.MinCU != b.MinCU || ep.MaxCU != b.MaxCU {
			t.Fatalf("restored %s endpoint %s to %v-%v CU, want its own %v-%v (not the plan's max 4)", thr, ep.ID, ep.MinCU, ep.MaxCU, b.MinCU, b.MaxCU)
		}
	}

	// The free project is released: its own quota and defaults come back.
	if _, err := r.Release(ctx, sus); err != nil {
		t.Fatalf("release: %v", err)
	}
	ps, _ = f.Sim.Project(sus)
	if ps.Quota != susBefore.Quota || ps.DefaultEndpointSettings.MaxCU != susBefore.DefaultEndpointSettings.MaxCU || ps.QuotaSuspended {
		t.Fatalf("released %s: quota %+v defaults %+v suspended %v; want its own quota %+v and defaults %+v", sus, ps.Quota,
			ps.DefaultEndpointSettings, ps.QuotaSuspended, susBefore.Quota, susBefore.DefaultEndpointSettings)
	}
}
