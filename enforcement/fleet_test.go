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
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// want is what a project of the fleet must look like in the simulator after a cycle.
type want struct {
	suspended bool    // quota holds its computes; TryWake fails
	maxCU     float64 // default endpoint max CU (0: not checked)
	level     enforcement.Level
	status    enforcement.Status
}

// TestFleet_CollectEnforceUpgradeReleaseRollover runs the whole loop on a simulated fleet:
// collect, a dry run, enforce, a second enforce, an upgrade, a release and a new period.
func TestFleet_CollectEnforceUpgradeReleaseRollover(t *testing.T) {
	f := newFixture(t, 80)
	f.collect(t)
	usage := f.usage(t)
	var ids []string
	for id, u := range usage {
		if u > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		return usage[ids[i]] < usage[ids[j]] || usage[ids[i]] == usage[ids[j]] && ids[i] < ids[j]
	})
	if len(ids) < 12 {
		t.Fatalf("only %d projects with usage; the fleet is too small", len(ids))
	}
	// Bands far apart so each has a clean spread.
	n := len(ids)
	used := map[string]bool{ids[n-1]: true, ids[n-2]: true}
	fOK, fWarn, fOver, fLimit := pickSpread(t, ids, usage, n/4, used)
	pOK, pWarn, pOver, pLimit := pickSpread(t, ids, usage, n/2, used)
	eOK, eWarn, eOver, eLimit := pickSpread(t, ids, usage, 3*n/4, used)
	upgraded, released := ids[n-1], ids[n-2] // the two largest, both free and over
	cat := catalog(t, fLimit, pLimit, eLimit, usage[upgraded]*10)
	period := plans.PeriodStart(testNow)
	f.assign(t, cat, period.Add(-24*time.Hour), map[string]string{
		fOK: "free", fWarn: "free", fOver: "free", pOK: "pro", pWarn: "pro", pOver: "pro",
		eOK: "enterprise", eWarn: "enterprise", eOver: "enterprise", upgraded: "free", released: "free",
	})

	// What the released project had before enforcement: a release gives it back.
	priorOfReleased, _ := f.Sim.Project(released)
	reg := prometheus.NewRegistry()
	r := f.reconciler(t, cat, testPolicy(), reg)
	ctx := context.Background()

	// A dry run reads but mutates nothing, and plans what enforce then does.
	dry, err := r.Cycle(ctx, enforcement.CycleOptions{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if got := f.mutations(); got != 0 || dry.Mutations != 0 {
		t.Fatalf("dry run made %d mutations (report %d), want 0", got, dry.Mutations)
	}
	rep, err := r.Cycle(ctx, enforcement.CycleOptions{})
	if err != nil {
		t.Fatalf("enforce: %v", err)
	}
	if a, b := actionList(dry), actionList(rep); !equal(a, b) || len(a) == 0 {
		t.Fatalf("dry run planned\n%v\nenforce did\n%v", a, b)
	}
	if rep.Mutations == 0 || int64(rep.Mutations) != f.mutations() {
		t.Fatalf("enforce reported %d mutations, the simulator saw %d", rep.Mutations, f.mutations())
	}
	check := func(stage string, wants map[string]want) {
		t.Helper()
		states, err := f.store().States(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for id, w := range wants {
			ps, _ := f.Sim.Project(id)
			if ps.QuotaSuspended != w.suspended {
				t.Errorf("%s: %s quota-suspended = %v, want %v (quota %+v, counters %+v)", stage, id, ps.QuotaSuspended, w.suspended, ps.Quota, ps.Counters)
			}
			if w.maxCU != 0 && ps.DefaultEndpointSettings.MaxCU != w.maxCU {
				t.Errorf("%s: %s default max CU = %v, want %v", stage, id, ps.DefaultEndpointSettings.MaxCU, w.maxCU)
			}
			if w.status == enforcement.StatusThrottled {
				for _, ep := range ps.Endpoints {
					if ep.Active && ep.MaxCU > 0.25 {
						t.Errorf("%s: %s running endpoint %s still at max %v CU", stage, id, ep.ID, ep.MaxCU)
					}
				}
			}
			if w.suspended {
				if f.Sim.TryWake(id) {
					t.Errorf("%s: %s woke although suspended", stage, id)
				}
			}
			st := states[id]
			if enforcement.Level(st.Level) != w.level || !hasPrefix(st.Applied, string(w.status)+" ") {
				t.Errorf("%s: %s state level %q applied %q, want %s and %s", stage, id, st.Level, st.Applied, w.level, w.status)
			}
		}
	}
	first := map[string]want{
		fOK:      {level: enforcement.LevelOK, status: enforcement.StatusNormal, maxCU: 0.5},
		fWarn:    {level: enforcement.LevelWarning, status: enforcement.StatusNormal, maxCU: 0.5},
		fOver:    {suspended: true, level: enforcement.LevelOver, status: enforcement.StatusSuspended, maxCU: 0.5},
		pOK:      {level: enforcement.LevelOK, status: enforcement.StatusNormal, maxCU: 4},
		pWarn:    {level: enforcement.LevelWarning, status: enforcement.StatusNormal, maxCU: 4},
		pOver:    {level: enforcement.LevelOver, status: enforcement.StatusThrottled, maxCU: 0.25},
		eOK:      {level: enforcement.LevelOK, status: enforcement.StatusNormal},
		eWarn:    {level: enforcement.LevelWarning, status: enforcement.StatusNormal},
		eOver:    {level: enforcement.LevelOver, status: enforcement.StatusNormal},
		upgraded: {suspended: true, level: enforcement.LevelOver, status: enforcement.StatusSuspended, maxCU: 0.5},
		released: {suspended: true, level: enforcement.LevelOver, status: enforcement.StatusSuspended, maxCU: 0.5},
	}
	t.Logf("fleet %d projects, %d reads, %d mutations, actions:\n%s", rep.Fleet, rep.Reads, rep.Mutations, strings.Join(actionList(rep), "\n"))
	check("first enforce", first)
	if got := testutil.ToFloat64(mustGauge(t, reg, "neonmeter_enforcement_breaker_tripped")); got != 0 {
		t.Fatalf("breaker tripped = %v on a normal cycle", got)
	}

	// A second enforce makes no Neon mutation.
	before := f.mutations()
	again, err := r.Cycle(ctx, enforcement.CycleOptions{})
	if err != nil {
		t.Fatalf("second enforce: %v", err)
	}
	if got := f.mutations() - before; got != 0 || again.Mutations != 0 {
		t.Fatalf("second enforce made %d mutations: %v", got, actionList(again))
	}
	for _, row := range again.Rows {
		if row.Crossed {
			t.Errorf("second enforce: %s crossed again (%s); crossings are edge-triggered", row.ProjectID, row.Level)
		}
	}

	// Upgrade mid-period to a plan with a far higher limit: restored. Release: restored.
	f.Clock.Set(testNow.Add(10 * time.Minute))
	f.assign(t, cat, f.Clock.Now(), map[string]string{upgraded: "bigscale"})
	if _, err := r.Release(ctx, released); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := r.Cycle(ctx, enforcement.CycleOptions{}); err != nil {
		t.Fatalf("enforce after upgrade: %v", err)
	}
	check("upgrade and release", map[string]want{
		upgraded: {level: enforcement.LevelOK, status: enforcement.StatusNormal, maxCU: 8},
		released: {level: enforcement.LevelOver, status: enforcement.StatusReleased, maxCU: priorOfReleased.DefaultEndpointSettings.MaxCU},
		fOver:    first[fOver],
	})
	if ps, _ := f.Sim.Project(released); ps.Quota != priorOfReleased.Quota {
		t.Errorf("released %s: quota %+v, want what it had before enforcement, %+v", released, ps.Quota, priorOfReleased.Quota)
	}
	for _, id := range []string{upgraded, released} {
		if !f.Sim.TryWake(id) {
			t.Errorf("%s does not run again after being restored", id)
		}
	}

	// A new period: everything is restored, the release ends.
	f.Clock.Set(time.Date(2026, 12, 1, 2, 30, 0, 0, time.UTC))
	f.collect(t)
	if _, err := r.Cycle(ctx, enforcement.CycleOptions{}); err != nil {
		t.Fatalf("enforce in the new period: %v", err)
	}
	rolled := map[string]want{}
	for _, id := range []string{fOK, fWarn, fOver, released} {
		rolled[id] = want{level: enforcement.LevelOK, status: enforcement.StatusNormal, maxCU: 0.5}
	}
	for _, id := range []string{pOK, pWarn, pOver} {
		rolled[id] = want{level: enforcement.LevelOK, status: enforcement.StatusNormal, maxCU: 4}
	}
	check("new period", rolled)
	for _, id := range []string{fOver, released} {
		if !f.Sim.TryWake(id) {
			t.Errorf("%s does not run again in the new period", id)
		}
	}
	if w := f.Sim.Stats().Wakes; w != 0 {
		t.Fatalf("the simulator counted %d wakes of idle computes; enforcement must wake none", w)
	}
	audit, err := f.store().AuditOf(ctx, fOver, 50)
	if err != nil {
		t.Fatal(err)
	}
	var suspends, decisions int
	for _, a := range audit {
		if a.Action == "update_project" && a.Reason == "suspend" && a.Outcome == "applied" && a.Mode == "enforce" {
			suspends++
		}
		if a.Action == "decision" && a.Level == "over" {
			decisions++
		}
	}
	if suspends != 1 || decisions != 1 {
		t.Fatalf("audit of %s: %d applied suspensions and %d over decisions, want 1 each:\n%+v", fOver, suspends, decisions, audit)
	}
}

// pickSpread picks three projects around position i of the usage order so that the limit puts
// the first under 80 %, the second at 90 % and the third over.
func pickSpread(t *testing.T, ids []string, usage map[string]uint64, i int, used map[string]bool) (ok, warn, over string, limit uint64) {
	t.Helper()
	for used[ids[i]] {
		i++
	}
	warn = ids[i]
	limit = uint64(float64(usage[warn])/0.9) + 1
	for j := i - 1; j >= 0; j-- {
		if usage[ids[j]] < limit*8/10 && !used[ids[j]] {
			ok = ids[j]
			break
		}
	}
	for j := i + 1; j < len(ids)-2; j++ {
		if usage[ids[j]] >= limit && !used[ids[j]] {
			over = ids[j]
			break
		}
	}
	if ok == "" || over == "" || usage[warn] < limit*8/10 {
		t.Fatalf("no ok/warning/over spread around %s (usage %d, limit %d)", warn, usage[warn], limit)
	}
	used[ok], used[warn], used[over] = true, true, true
	return ok, warn, over, limit
}

func mustGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

var _ = sim.Faults{}
