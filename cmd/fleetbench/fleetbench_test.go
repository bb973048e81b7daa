package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// TestFleetbench_FullsweepEqualsGroundTruth runs the harness as the lead runs it, on a tiny
// fleet: today's full sweeps as child processes of the real binary on the shared accelerated
// clock, three simulated hours at one real second each (it ends as soon as the day is final;
// the long settle only tolerates a slow machine). Every stored (project, metric, hour)
// of the day must equal the simulator's truth, the budget must hold and the database must be
// dropped afterwards.
func TestFleetbench_FullsweepEqualsGroundTruth(t *testing.T) {
	conn := chtest.Connect(t) // fails, saying how to start it, without a server
	o := options{Projects: 400, ActiveShare: 0.1, Budget: 30, Burst: 10, GeneralRate: 700, Hours: 3, Hour: time.Second,
		Mode: modeFullsweep, Cycle: 30 * time.Minute, Lookback: 3 * time.Hour, Settle: 48 * time.Hour, Seed: 3,
		ClickHouse: chtest.Addr(), Bin: filepath.Join(crashtest.Build(t, "../neonmeter"), "neonmeter"), LogDir: t.TempDir()}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	res, err := bench(t.Context(), o, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeReport(&out, res)
	t.Log(out.String())

	v := res.verify
	if !v.ok() || v.values < 3000 || v.projects != 360 {
		t.Fatalf("verification: %+v", v)
	}
	if res.settled.IsZero() || res.settled.Before(res.dayEnd.Add(provisional)) {
		t.Fatalf("day complete at %v; the day ends %v and is final 2 h later", res.settled, res.dayEnd)
	}
	s := res.summarize()
	if s.calls == 0 || s.overBudget != 0 || s.failed != 0 || s.maxRSS == 0 {
		t.Fatalf("summary %+v", s)
	}
	rows := res.rows()
	if len(rows) < 5 || rows[0].active.projects == 0 || rows[0].active.worst < 0 {
		t.Fatalf("%d rows, first %+v", len(rows), rows[0])
	}
	if !strings.Contains(out.String(), "**equal to the ground truth**") {
		t.Fatal("the report does not state the verdict")
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM system.databases WHERE name = ?", res.database); n != 0 {
		t.Fatalf("database %s not dropped", res.database)
	}
}

// verifyFixture is a simulator on a frozen clock, a migrated database holding exactly its truth
// for three hours, and the harness state verifyDay needs.
func verifyFixture(t *testing.T) (*benchRun, int) {
	t.Helper()
	conn, db := chtest.New(t)
	t0 := time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)
	s, err := sim.New(sim.Config{Projects: 60, Seed: 8, Now: testclock.New(t0).Now, ActiveShare: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	day := t0.Truncate(time.Hour).Add(-6 * time.Hour)
	b := &benchRun{sim: s, conn: conn, o: options{Database: db, Mode: modeFullsweep}, chunk: 7,
		res: &result{dayStart: day, dayEnd: day.Add(3 * time.Hour)}}
	for _, so := range s.Orgs() {
		if so.Plan != "free" {
			b.orgs = append(b.orgs, org{id: so.ID, projects: so.ProjectIDs})
		}
	}
	b.sorted = sortedIDs(b.orgs)
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO "+db+".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, o := range b.orgs {
		for _, id := range o.projects {
			names := s.RouteMetrics(id)
			s.HourlyTruth(id, b.res.dayStart, b.res.dayEnd, func(h time.Time, vals []int64) {
				for i, v := range vals {
					if v != 0 {
						rows++
						if err := batch.Append(o.id, id, names[i], h, uint64(v), "p", "scale", t0, uint64(1)); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	return b, rows
}

// TestVerify_CountsEveryDifference: the verification, chunked across project-id boundaries,
// passes on exactly the truth and counts a changed value, a value zeroed, a value where the
// truth is 0, a row of an unknown project and a row of an org that is not collected.
func TestVerify_CountsEveryDifference(t *testing.T) {
	b, rows := verifyFixture(t)
	v, err := b.verifyDay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !v.ok() || v.values != int64(rows) || v.matched != int64(rows) || v.projects != 54 {
		t.Fatalf("on the truth itself: %+v (%d rows stored)", v, rows)
	}

	scale := b.sorted["org-sim-scale"]
	id := scale[len(scale)/2]
	names := b.sim.RouteMetrics(id)
	h := b.res.dayStart.Add(time.Hour)
	var zeroMetric string // a metric whose truth is 0 in hour h
	for i, m := range names {
		b.sim.HourlyTruth(id, h, h.Add(time.Hour), func(_ time.Time, vals []int64) {
			if vals[i] == 0 && zeroMetric == "" {
				zeroMetric = m
			}
		})
	}
	if zeroMetric == "" {
		t.Fatal("fixture: no zero value to contradict")
	}
	truth := func(m string) uint64 { return uint64(b.sim.Value(id, m, h)) }
	batch, err := b.conn.PrepareBatch(t.Context(), "INSERT INTO "+b.o.Database+".usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	insert := func(orgID, project, metric string, hour time.Time, value uint64) {
		t.Helper()
		if err := batch.Append(orgID, project, metric, hour, value, "p", "scale", hour, uint64(2)); err != nil {
			t.Fatal(err)
		}
	}
	insert("org-sim-scale", id, "root_branch_bytes_month", h, truth("root_branch_bytes_month")+1) // mismatched
	insert("org-sim-scale", id, "instant_restore_bytes_month", b.res.dayStart, 0)                 // missing: never 0 in the truth
	insert("org-sim-scale", id, zeroMetric, h, 5)                                                 // extra: truth 0
	insert("org-sim-scale", "aaaa-before-everyone-00000000", "compute_unit_seconds", h, 9)        // extra: no such project
	insert("org-sim-free", b.sim.Orgs()[0].ProjectIDs[0], "compute_unit_seconds", h, 9)           // extra: org not collected
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	v, err = b.verifyDay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.ok() || v.mismatched != 1 || v.missing != 1 || v.extra != 3 || len(v.examples) != 5 || v.values != int64(rows) {
		t.Fatalf("after five changes: %+v", v)
	}
}

func TestParseFlags_Refuses(t *testing.T) {
	for args, want := range map[string]string{
		"--projects 2":                 "--projects 2",
		"--active-share 0.9":           "--active-share 0.9",
		"--mode sometimes":             `--mode "sometimes"`,
		"--hour 1ms":                   "--hour 1ms",
		"--lookback 2h":                "--lookback 2h0m0s",
		"--settle 1h":                  "--settle 1h0m0s",
		"--max-real -1s":               "--max-real -1s",
		"--start 2026-11-01T00:30:00Z": "must be on the hour",
		"--database bad-name":          `--database "bad-name"`,
		"--budget 0":                   "--budget 0",
		"--burst 0":                    "--burst 0",
		"--cycle 45m":                  "must divide an hour",
	} {
		_, err := parseFlags(strings.Fields(args), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %q", args, err, want)
		}
	}
	o, err := parseFlags([]string{"--projects", "1000", "--mode", "both", "--start", "2026-11-01T00:00:00Z"}, &bytes.Buffer{})
	if err != nil || o.Mode != modeBoth || !o.Start.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || o.Budget != 30 || o.Hours != 24 {
		t.Fatalf("defaults and flags: %+v, %v", o, err)
	}
}

// progressRow is one row of collection_progress.
type progressRow struct {
	org, project, tier string
	through, updated   time.Time
}

// insertProgress writes progress rows as the budgeted collector does.
func insertProgress(t *testing.T, b *benchRun, rows ...progressRow) {
	t.Helper()
	batch, err := b.conn.PrepareBatch(t.Context(), "INSERT INTO "+b.o.Database+".collection_progress (org_id, project_id, complete_through, last_active_at, tier, updated_at, run_id)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := batch.Append(r.org, r.project, r.through, r.through, r.tier, r.updated, "run"); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestProgress_TiersActiveFreshnessAndDayDone reads the budgeted collector's progress table as
// the harness does: by tier, merged with the projects that ran, and as the end condition.
func TestProgress_TiersActiveFreshnessAndDayDone(t *testing.T) {
	b, _ := verifyFixture(t)
	b.o.Mode = modeBudgeted
	at := b.res.dayEnd.Add(3 * time.Hour)
	scale := b.sorted["org-sim-scale"]
	const sc = "org-sim-scale"
	insertProgress(t, b,
		progressRow{sc, scale[0], "active", at.Add(-time.Hour), at},
		progressRow{sc, scale[1], "active", at.Add(-2 * time.Hour), at},
		progressRow{sc, scale[2], "at_risk", at.Add(-90 * time.Minute), at.Add(-time.Minute)},
		progressRow{sc, scale[3], "rolling", at.Add(-5 * time.Hour), at.Add(-4 * time.Hour)},
		progressRow{sc, scale[3], "rolling", at.Add(-7 * time.Hour), at.Add(-6 * time.Hour)}, // an older row, replaced
	)
	tiers, err := b.progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tiers) != 3 || tiers["active"].projects != 2 || !tiers["active"].oldest.Equal(at.Add(-2*time.Hour)) ||
		!tiers["rolling"].oldest.Equal(at.Add(-5*time.Hour)) || !tiers["at_risk"].updated.Equal(at.Add(-time.Minute)) {
		t.Fatalf("tiers %+v", tiers)
	}
	if got := oldest(tiers, at); got != 5*time.Hour {
		t.Fatalf("oldest %v, want 5h", got)
	}
	f := freshness{worst: -1}
	ran := []string{scale[1], scale[3], scale[4], scale[5]} // sorted: two collected, two never
	if err := b.activeProgress(t.Context(), sc, ran, at, &f); err != nil {
		t.Fatal(err)
	}
	if f.projects != 4 || f.never != 2 || f.worst != 5*time.Hour {
		t.Fatalf("active freshness %+v", f)
	}
	// Not done: no cycle started after the day was final, then most projects have no progress.
	for _, start := range []time.Time{b.res.dayEnd.Add(time.Hour), at} {
		if done, err := b.dayDone(t.Context(), start, nil); err != nil || done {
			t.Fatalf("cycle at %v: done %v, %v", start, done, err)
		}
	}
	// Every project through the day's end, collected by the cycle that started at `at` or later,
	// but one collected before it: not done; that one collected again: done.
	var rows []progressRow
	for _, o := range b.orgs {
		for _, id := range o.projects {
			updated := at.Add(time.Minute)
			if id == scale[7] {
				updated = at.Add(-time.Minute)
			}
			rows = append(rows, progressRow{o.id, id, "rolling", b.res.dayEnd, updated})
		}
	}
	insertProgress(t, b, rows...)
	if done, err := b.dayDone(t.Context(), at.Add(30*time.Minute), nil); err != nil || done {
		t.Fatalf("done %v, %v with a project last collected before the final cycle", done, err)
	}
	insertProgress(t, b, progressRow{sc, scale[7], "rolling", b.res.dayEnd, at.Add(2 * time.Minute)})
	if done, err := b.dayDone(t.Context(), at.Add(time.Hour), nil); err != nil || !done {
		t.Fatalf("done %v, %v with every project complete and final", done, err)
	}
}

// A child's peak is its own: a small child of a large harness reads small (the rusage of a wait
// would report the harness's peak, carried over at exec).
func TestWatchPeakRSS_TheChildsOwnPeak(t *testing.T) {
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = 1 // resident, so the harness is far larger than the child
	}
	cmd := exec.Command("sleep", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop, peak := make(chan struct{}), make(chan int64)
	go func() { peak <- watchPeakRSS(cmd.Process.Pid, stop) }()
	err := cmd.Wait()
	close(stop)
	got := <-peak
	if err != nil || got <= 0 || got >= 32<<20 || got >= selfMaxRSS() {
		t.Fatalf("sleep's peak %d bytes (%v); want more than 0 and far below this process's %d", got, err, selfMaxRSS())
	}
	if ballast[len(ballast)-1] != 1 {
		t.Fatal("ballast lost")
	}
}
