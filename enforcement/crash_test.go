package enforcement_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// enforceChild is what a child enforcement process is started with (see TestMain).
type enforceChild struct {
	URL, DB, Catalog string        // the simulator's API base, the database, the plan catalog's file
	Offset           time.Duration // of the crash clock (crashClock)
}

func TestMain(m *testing.M) { crashtest.Main(m, childEnforce) }

// crashClock is the wall clock moved back to testNow: it advances, so the simulator's operations
// finish and state versions grow, and parent and child agree on it through the offset.
func crashClock(offset time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(offset) }
}

// crashPolicy enforces with no breaker in the way (the fleet is meant to need many actions) and
// few drift reads (they only slow the cycle down).
func crashPolicy() enforcement.Policy {
	p := testPolicy()
	p.MaxActions = 1_000_000
	p.DriftReads = 5
	return p
}

// crashClientConfig slows a test client's retries down for the slow fleet of the crash test.
func crashClientConfig(c *neon.Config) {
	c.MaxBackoff, c.MaxRetries, c.OperationPollInterval = 10*time.Millisecond, 60, 3*time.Millisecond
}

// crashNeonClient is the child's client: the fleet's client settings, slowed down as the
// parent's.
func crashNeonClient(url string) (*neon.Client, error) {
	cfg := testfleet.ClientConfig(url)
	crashClientConfig(&cfg)
	return neon.NewClient(cfg)
}

// crashReconciler is the reconciler of the crash test, the child's and the parent's alike; m
// may be nil.
func crashReconciler(client enforcement.Neon, conn driver.Conn, db string, cat *plans.Catalog, now func() time.Time, m *enforcement.Metrics) (*enforcement.Reconciler, error) {
	return enforcement.New(enforcement.Config{Neon: client, Store: chstore.New(conn, db), Accounts: accountsstore.New(conn, db), Catalog: cat,
		DefaultPlan: "enterprise", Policy: crashPolicy(), Now: now, Metrics: m})
}

// childEnforce runs one enforce cycle in this process, to be killed by the parent test.
func childEnforce() error {
	var c enforceChild
	if err := crashtest.Settings(&c); err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := chtest.Open(ctx)
	if err != nil {
		return err
	}
	client, err := crashNeonClient(c.URL)
	if err != nil {
		return err
	}
	cat, err := plans.Load(c.Catalog)
	if err != nil {
		return err
	}
	r, err := crashReconciler(client, conn, c.DB, cat, crashClock(c.Offset), nil)
	if err != nil {
		return err
	}
	_, err = r.Cycle(ctx, enforcement.CycleOptions{})
	return err
}

// TestCycle_KilledAtRandomPointsThenConverges kills enforcing processes with SIGKILL at random
// points at least 20 times while a fleet needs hundreds of Neon mutations (slow answers and
// long-running operations stretch the apply phase), then runs cycles in this process until one
// makes no mutation. What it proves:
//   - Neon ends exactly where an uninterrupted run would put it (the fleet test's expectations,
//     per project), and a further cycle makes 0 mutations; nothing woke an idle compute;
//   - no mutation is recorded twice: at most one applied audit row per (project, action,
//     endpoint), because a re-run re-reads Neon and finds the work done;
//   - each crossing is audited once, except that a kill between a project's audit insert and
//     its state write leaves the level unremembered, so the next cycle audits that crossing
//     again: a duplicate decision's first copy belongs to a killed cycle, and a killed cycle
//     duplicates at most one project's decision. The converging cycles count crossings only
//     for such projects (the alert metric is per process: it fires once per crossing a
//     surviving process sees);
//   - a kill between a project's mutations and its audit insert loses that project's action
//     rows (Neon is right, the audit misses them): at most one project per kill.
func TestCycle_KilledAtRandomPointsThenConverges(t *testing.T) {
	offset := time.Until(testNow)
	now := crashClock(offset)
	// The simulator runs on the crash clock; the fleet's own clock stays at testNow for collecting
	// and importing accounts.
	fl := testfleet.New(t, testfleet.Options{Projects: 1200, Seed: 11, Now: testNow, Sim: func(c *sim.Config) {
		c.Now, c.OperationDelay = now, 25*time.Millisecond
	}})
	fl.Client = fl.NewClient(t, crashClientConfig)
	f := fleetFixture(t, fl)
	s, url, client, conn, db := f.Sim, f.URL, f.Client, f.Conn, f.DB
	f.collect(t)
	usage := f.usage(t)

	// Plans round-robin over the usage order (40 % free, 40 % pro, 20 % enterprise); each plan's
	// limit sits at its 60th percentile, so about 40 % of free projects are suspended and of pro
	// projects throttled, some warn, and every free and pro project needs its quota or defaults
	// tightened.
	ids := make([]string, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return usage[ids[i]] < usage[ids[j]] || usage[ids[i]] == usage[ids[j]] && ids[i] < ids[j]
	})
	// Enterprise projects need no Neon change; a killed cycle does not remember them, so each
	// child re-reads them: keep them few so the children reach new work soon.
	planNames := []string{"free", "pro", "free", "pro", "free", "pro", "free", "pro", "enterprise", "enterprise"}
	planOf := map[string]string{}
	byPlan := map[string][]string{}
	for i, id := range ids {
		p := planNames[i%len(planNames)]
		planOf[id] = p
		byPlan[p] = append(byPlan[p], id)
	}
	limit := map[string]uint64{}
	for p, l := range byPlan {
		limit[p] = max(usage[l[len(l)*6/10]], 1)
	}
	// No project is on bigscale; its limit only fills the shared catalog.
	yaml := fmt.Sprintf(catalogYAML, limit["free"], limit["pro"], limit["enterprise"], uint64(1)<<40)
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := plans.Parse("catalog.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	f.assign(t, cat, plans.PeriodStart(testNow).Add(-24*time.Hour), planOf)

	wants := map[string]want{}
	levels := map[enforcement.Level]int{}
	for id, p := range planOf {
		u, l := usage[id], limit[p]
		lv := enforcement.LevelOK
		switch {
		case u >= l:
			lv = enforcement.LevelOver
		case u >= (l*8+9)/10:
			lv = enforcement.LevelWarning
		}
		levels[lv]++
		w := want{level: lv, status: enforcement.StatusNormal}
		switch p {
		case "free":
			w.maxCU = 0.5
			if lv == enforcement.LevelOver {
				w.suspended, w.status = true, enforcement.StatusSuspended
			}
		case "pro":
			w.maxCU = 4
			if lv == enforcement.LevelOver {
				w.maxCU, w.status = 0.25, enforcement.StatusThrottled
			}
		}
		wants[id] = w
	}
	if levels[enforcement.LevelOver] < 30 || levels[enforcement.LevelWarning] == 0 || len(ids) < 200 {
		t.Fatalf("fleet of %d projects has levels %v: too few to exercise crash recovery", len(ids), levels)
	}

	// Slow answers and 25 ms operations stretch every project's apply, so kills land inside it.
	s.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 8 * time.Millisecond, Seed: 5})
	rng := rand.New(rand.NewPCG(7, 8))
	killed, finished, midApply := 0, 0, 0
	for attempt := 0; killed < 20; attempt++ {
		if attempt == 40 {
			t.Fatalf("only %d of 40 child cycles were killed before finishing (%d finished)", killed, finished)
		}
		before := f.mutations()
		child := crashtest.StartWith(t, enforceChild{URL: url, DB: db, Catalog: catPath, Offset: offset})
		// Most kills come at a random point after the child's first mutation (the apply phase,
		// which grows later as more of the fleet is done and re-read); every fourth at a
		// random point from its start (loading, reading).
		wait := time.Duration(rng.IntN(400)) * time.Millisecond
		var exited bool
		var err error
		if attempt%4 != 3 {
			for f.mutations() == before && !exited {
				exited, err = child.Exited(2 * time.Millisecond)
			}
		}
		if !exited {
			exited, err = child.Exited(wait)
		}
		if exited {
			if err != nil {
				t.Fatalf("child cycle failed on its own: %v\n%s", err, child.Output())
			}
			finished++
			continue
		}
		child.Kill()
		killed++
		if f.mutations() > before {
			midApply++
		}
	}
	store := f.store()
	states, err := store.States(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fleet %d projects (levels %v), %d cycles killed (%d of them after sending mutations), %d finished, %d projects remembered, %d mutation requests",
		len(ids), levels, killed, midApply, finished, len(states), f.mutations())
	if midApply < killed*3/4 || finished > 0 {
		t.Fatalf("only %d of %d kills landed in the apply phase, %d cycles finished: the test does not exercise crash recovery", midApply, killed, finished)
	}
	// Projects whose crossing no surviving state remembers: the converging cycles may count
	// their crossings (again), no others.
	unremembered := 0
	for id, w := range wants {
		if st, ok := states[id]; w.level != enforcement.LevelOK && (!ok || enforcement.Level(st.Level) != w.level) {
			unremembered++
		}
	}

	// Converge in this process, faults off.
	s.SetFaults(sim.Faults{})
	reg := prometheus.NewRegistry()
	m, err := enforcement.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := crashReconciler(client, conn, db, cat, now, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cycleIDs []string
	converged := false
	for i := 0; i < 3 && !converged; i++ {
		rep, err := r.Cycle(ctx, enforcement.CycleOptions{})
		if err != nil {
			t.Fatalf("converging cycle %d: %v", i+1, err)
		}
		cycleIDs = append(cycleIDs, rep.CycleID)
		t.Logf("converging cycle %d: %d reads, %d mutations", i+1, rep.Reads, rep.Mutations)
		converged = rep.Mutations == 0
	}
	if !converged {
		t.Fatal("three cycles after the kills still mutate Neon")
	}
	before := f.mutations()
	rep, err := r.Cycle(ctx, enforcement.CycleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cycleIDs = append(cycleIDs, rep.CycleID)
	if got := f.mutations() - before; got != 0 || rep.Mutations != 0 {
		t.Fatalf("a further cycle made %d mutations: %v", got, actionList(rep))
	}
	for _, row := range rep.Rows {
		if row.Crossed {
			t.Errorf("further cycle: %s crossed again (%s)", row.ProjectID, row.Level)
		}
	}

	// Every project is where an uninterrupted run puts it.
	states, err = store.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		w := wants[id]
		ps, _ := s.Project(id)
		if ps.QuotaSuspended != w.suspended {
			t.Errorf("%s (%s): quota-suspended = %v, want %v", id, planOf[id], ps.QuotaSuspended, w.suspended)
		}
		if w.maxCU != 0 && ps.DefaultEndpointSettings.MaxCU != w.maxCU {
			t.Errorf("%s (%s): default max CU = %v, want %v", id, planOf[id], ps.DefaultEndpointSettings.MaxCU, w.maxCU)
		}
		if planOf[id] == "enterprise" && ps.Quota != (sim.Quota{}) {
			t.Errorf("%s (enterprise): quota %+v, want none", id, ps.Quota)
		}
		for _, ep := range ps.Endpoints {
			if w.status == enforcement.StatusThrottled && ep.Active && ep.MaxCU > 0.25 {
				t.Errorf("%s: running endpoint %s still at max %v CU", id, ep.ID, ep.MaxCU)
			}
			if w.suspended && ep.Active {
				t.Errorf("%s: endpoint %s runs although the project is suspended", id, ep.ID)
			}
		}
		st := states[id]
		if enforcement.Level(st.Level) != w.level || !hasPrefix(st.Applied, string(w.status)+" ") {
			t.Errorf("%s: state level %q applied %q, want %s and %s", id, st.Level, st.Applied, w.level, w.status)
		}
	}

	// The audit: what a crash may duplicate or lose, and no more.
	completed := map[string]bool{}
	for _, id := range cycleIDs {
		completed[id] = true
	}
	duplicated, unaudited, applied := 0, 0, 0
	for _, id := range ids {
		audit, err := store.AuditOf(ctx, id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var decisions []enforcement.AuditRecord
		seen := map[string]int{}
		for _, a := range audit {
			switch {
			case a.Action == "decision":
				decisions = append(decisions, a)
			case a.Outcome == "applied":
				applied++
				seen[a.Action+" "+a.Reason+" "+a.After]++
			default:
				t.Errorf("%s: unexpected audit row %+v", id, a)
			}
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("%s: %q recorded as applied %d times: a re-run repeated a mutation", id, k, n)
			}
		}
		w := wants[id]
		wantDecisions := 1
		if w.level == enforcement.LevelOK {
			wantDecisions = 0 // first seen within limits: nothing to say
		}
		for _, d := range decisions {
			if enforcement.Level(d.Level) != w.level {
				t.Errorf("%s: decision at level %s, want only %s", id, d.Level, w.level)
			}
		}
		// Extra copies of a crossing come only from killed cycles (the one remembered may be
		// a surviving or a killed cycle's).
		fromKilled := 0
		for _, d := range decisions {
			if !completed[d.CycleID] {
				fromKilled++
			}
		}
		if extra := len(decisions) - wantDecisions; extra < 0 || wantDecisions == 0 && extra > 0 || extra > 0 && fromKilled < extra {
			t.Errorf("%s: %d decisions (want %d; extra copies only from killed cycles, %d are): %+v", id, len(decisions), wantDecisions, fromKilled, decisions)
		} else {
			duplicated += extra
		}
		if planOf[id] == "free" && len(seen) == 0 {
			unaudited++ // every free project needed its quota set
		}
	}
	if duplicated > killed {
		t.Errorf("%d crossings audited twice after %d kills: a kill may duplicate at most the project in flight", duplicated, killed)
	}
	if unaudited > killed {
		t.Errorf("%d free projects were tightened without an applied audit row; a kill may lose at most one project's rows (%d kills)", unaudited, killed)
	}
	crossings := metrictest.Sum(t, reg, "neonmeter_enforcement_crossings_total", nil)
	t.Logf("audit: %d applied action rows, %d crossings audited twice, %d free projects tightened without an audit row, %d crossings counted while converging",
		applied, duplicated, unaudited, int(crossings))
	if int(crossings) > unremembered {
		t.Errorf("the converging cycles counted %d crossings, but only %d projects' levels were unremembered after the kills", int(crossings), unremembered)
	}
	if w := s.Stats().Wakes; w != 0 {
		t.Fatalf("the simulator counted %d wakes of idle computes; enforcement must wake none", w)
	}
	for id, w := range wants {
		if w.suspended && s.TryWake(id) {
			t.Errorf("%s woke although suspended", id)
		}
	}
}
