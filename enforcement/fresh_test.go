package enforcement_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// lastActive returns each project of the org as its project list shows compute_last_active_at.
func (f *fixture) lastActive(t *testing.T, org string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for page, err := range f.Client.ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: org}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Projects {
			out[p.ID] = p.ComputeLastActiveAt
		}
	}
	return out
}

// TestFreshness_PerProjectFromProgressAndTheList: staleness used to be judged per org from the
// hourly watermark, so once a budgeted collector left an idle project's hours behind, the whole
// org looked stale, or a project looked fresh because others of its org were. Now each project
// with a progress row is fresh when its hours are complete up to StaleAfter ago, or when the
// project list shows its computes did not run since (its usage cannot have grown); a project
// without a row falls back to its org's watermark. Four projects over a hard limit, the org's
// watermark 4 h 40 min old: the idle one and the recently collected one are suspended; the one
// that ran since its progress and the one without a row are held for stale data.
func TestFreshness_PerProjectFromProgressAndTheList(t *testing.T) {
	f := newFixture(t, 200)
	f.collect(t) // through 12:00; the org's watermark says so
	usage := f.usage(t)
	collected := testNow.Truncate(time.Hour)
	f.Clock.Set(testNow.Add(4 * time.Hour))
	seen := f.lastActive(t, f.org.ID)
	var idle, ran []string
	for _, id := range byUsage(usage) {
		if seen[id].After(collected) {
			ran = append(ran, id)
		} else {
			idle = append(idle, id)
		}
	}
	if len(idle) < 1 || len(ran) < 3 {
		t.Fatalf("%d projects idle since %s and %d that ran since; the test needs 1 and 3", len(idle), collected, len(ran))
	}
	sort.Strings(idle)
	sort.Strings(ran)
	idleOld, ranOld, ranRecent, noRow := idle[0], ran[0], ran[1], ran[2]
	progress := func(id string, through time.Time) collector.ProjectProgress {
		return collector.ProjectProgress{OrgID: f.org.ID, ProjectID: id, CompleteThrough: through, FinalThrough: through, RereadThrough: through, LastActiveAt: seen[id],
			Tier: collector.TierActive, UpdatedAt: f.Clock.Now(), RunID: "collect-test"}
	}
	err := collectorstore.New(f.Conn, f.DB).WriteProgress(context.Background(), []collector.ProjectProgress{
		progress(idleOld, collected), progress(ranOld, collected), progress(ranRecent, f.Clock.Now().Truncate(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog(t, 1, 1<<40, 1<<40, 1<<40) // free: every project with usage is over
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), map[string]string{idleOld: "free", ranOld: "free", ranRecent: "free", noRow: "free"})
	rep := cycle(t, f.reconciler(t, cat, testPolicy(), nil))
	for id, want := range map[string]bool{idleOld: true, ranRecent: true, ranOld: false, noRow: false} {
		row, _ := rowOf(rep, id)
		ps, _ := f.Sim.Project(id)
		held := row.Held == enforcement.HeldStaleData
		if ps.Quota.ActiveTimeSeconds == enforcement.ActiveTimeSuspendQuota != want || held == want ||
			(row.Status == enforcement.StatusSuspended) != want {
			t.Errorf("%s: status %s held %q, quota %+v; want suspended %v (last active %s, collected through %s)",
				id, row.Status, row.Held, ps.Quota, want, seen[id], collected)
		}
	}
}
