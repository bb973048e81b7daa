package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
)

// TestSoak_Week is the CI soak: a simulated week across a month's end, 2,000 projects, one
// serve replica on the test server, under the seeded schedule (kill -9s, SIGSTOPs of lease
// holders, Neon 429 storms, 5xx bursts and duplicated pages, Stripe outages and lost
// responses, operators' pushes and enforcement cycles, plan changes, new customers, deletions,
// revisions up to 48 h late). Every judged check of the table holds, every kind of fault was
// applied and met requests, and the usage check finds a value corrupted afterwards.
func TestSoak_Week(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn) // dropped when the test passes, kept for a look when it fails
	bin := crashtest.Build(t, "../neonmeter")
	o := options{Days: 7, Projects: 2000, Replicas: 1, Seed: 1, Hour: 2 * time.Second, Budget: 2, Kills: 6, Settle: 36 * time.Hour,
		ClickHouse: chtest.Addr(), Database: db, KeepDB: true, Bin: bin + "/neonmeter", LogDir: t.TempDir(),
		Rules: "../../deploy/prometheus/neonmeter.rules.yml"}
	o.afterChecks = corruptAndRecheck
	var log strings.Builder
	rep, err := soak(t.Context(), o, &log)
	var out strings.Builder
	if rep != nil {
		rep.write(&out)
	}
	t.Logf("%s%s", log.String(), out.String())
	if err != nil {
		t.Fatalf("soak: %v (replicas' logs in %s)", err, o.LogDir)
	}
	if failed := rep.failed(); len(failed) > 0 {
		t.Errorf("checks failed: %s", strings.Join(failed, "; "))
	}
	for _, c := range rep.rows {
		if c.compared == 0 {
			t.Errorf("%s: nothing compared", c.name)
		}
	}
	if rep.settled.IsZero() {
		t.Error("the week never settled: some project was not collected final up to its end")
	}
	for k, n := range Count(rep.events) {
		if rep.tally.applied[k] != n {
			t.Errorf("%s: %d scheduled, %d applied", k, n, rep.tally.applied[k])
		}
	}
	if rep.simStats.Faults == 0 || rep.stripeRefused == 0 {
		t.Errorf("faults met no request: Neon %d, Stripe outages %d", rep.simStats.Faults, rep.stripeRefused)
	}
}

// corruptAndRecheck raises one stored value of a live project and checks the usage check
// reports exactly that cell.
func corruptAndRecheck(ctx context.Context, w *world) error {
	org := w.orgs[0]
	p := org.ProjectIDs[len(org.ProjectIDs)/2]
	hour := w.o.Start.Add(5 * time.Hour)
	if _, gone := w.deleted[p]; gone {
		return fmt.Errorf("%s was deleted; pick another", p)
	}
	// INSERT … SELECT: an INSERT … VALUES with bound arguments would leave 18.16 waiting for a data block.
	err := w.conn.Exec(ctx, "INSERT INTO "+w.o.Database+".usage_facts (org_id, project_id, metric, hour, value, version) "+
		"SELECT ?, ?, 'compute_unit_seconds', toDateTime(?, 'UTC'), toUInt64(?), toUInt64(?)",
		org.ID, p, hour.Unix(), uint64(w.sim.Value(p, "compute_unit_seconds", hour)+7), uint64(1)<<62)
	if err != nil {
		return err
	}
	live, _, _, err := w.checkUsage(ctx, w.o.Start, w.o.Start.Add(time.Duration(w.o.Days)*24*time.Hour), map[string]bool{p: true})
	if err != nil {
		return err
	}
	if live.bad != 1 || !strings.Contains(strings.Join(live.examples, "\n"), p+" compute_unit_seconds") {
		return fmt.Errorf("a corrupted value: %d mismatches, want 1 naming %s: %v", live.bad, p, live.examples)
	}
	return nil
}
