package enforcement_test

import (
	"context"
	"hash/crc32"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// Simulator routes a cycle calls.
const (
	routeList      = "GET /projects"
	routeGet       = "GET /projects/{project_id}"
	routeComputes  = "GET /projects/{project_id}/endpoints"
	routePatch     = "PATCH /projects/{project_id}"
	routeSuspend   = "POST /projects/{project_id}/endpoints/{endpoint_id}/suspend"
	routePatchComp = "PATCH /projects/{project_id}/endpoints/{endpoint_id}"
)

// wantListCalls is the project list calls of one pass over the fleet's orgs: ⌊n/400⌋+1 per org
// of n projects (a full last page takes one more call to learn it was the last); deleted
// projects are not listed.
func wantListCalls(s *sim.Sim, deleted ...string) int64 {
	var n int64
	for _, o := range s.Orgs() {
		live := len(o.ProjectIDs)
		for _, id := range o.ProjectIDs {
			if slices.Contains(deleted, id) {
				live--
			}
		}
		n += int64(live/400 + 1)
	}
	return n
}

// checkCalls compares a cycle's Neon calls, as the simulator served them, with its report: list
// pages, GETs, compute reads and mutations are the cycle's own counts, by route.
func checkCalls(t *testing.T, stage string, got map[string]int64, rep *enforcement.Report, wantList, wantGets int64) {
	t.Helper()
	mutations := got[routePatch] + got[routeSuspend] + got[routePatchComp]
	if got[routeList] != wantList || int64(rep.ListCalls) != wantList || got[routeGet] != wantGets || int64(rep.GetCalls) != wantGets ||
		got[routeComputes] != int64(rep.EndpointCalls) || mutations != int64(rep.Mutations) {
		t.Fatalf("%s: the simulator served %v; the report says %d list, %d get, %d computes, %d mutations; want %d list calls and %d GETs",
			stage, got, rep.ListCalls, rep.GetCalls, rep.EndpointCalls, rep.Mutations, wantList, wantGets)
	}
}

// TestCalls_ListPagesPerOrgComputesOnlyWhereTheyMatter: a cycle used to read 2 GETs per project
// needing attention, at most 2,000 per cycle, so a first cycle of a big fleet took many cycles.
// Now one list pass per org observes every project (⌊n/400⌋+1 calls for n projects), and a
// project is read on its own only where the list cannot tell: its computes when its plan holds
// them (computes never seen, newly suspended or throttled, waiting), or a GET when no list shows
// it (deleted: 404, gone). 1,000 projects in 4 orgs of 100, 100, 400 and 400: 6 list calls.
func TestCalls_ListPagesPerOrgComputesOnlyWhereTheyMatter(t *testing.T) {
	f := fleetFixture(t, testfleet.New(t, testfleet.Options{Projects: 1000, Seed: 11, Now: testNow}))
	usage := f.seedUsage(t, func(id string) uint64 { return uint64(crc32.ChecksumIEEE([]byte(id)) % 5000) })
	scale := f.org.ProjectIDs
	planOf := map[string]string{}
	for i, id := range scale[:30] {
		planOf[id] = map[bool]string{true: "free", false: "pro"}[i%3 != 0]
	}
	cat := catalog(t, 2500, 2500, 1<<40, 1<<40) // about half of each over; the default plan alerts only
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), planOf)
	pol := testPolicy()
	pol.DriftReads = 0
	r := f.reconciler(t, cat, pol, nil)
	ctx := context.Background()
	wantList := wantListCalls(f.Sim)
	if wantList != 6 {
		t.Fatalf("the fleet's orgs take %d list calls, the test expects 6", wantList)
	}
	run := func(stage string, opts enforcement.CycleOptions) (*enforcement.Report, map[string]int64) {
		t.Helper()
		before := f.Sim.Stats().Requests
		rep, err := r.Cycle(ctx, opts)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		got := f.requestsSince(before)
		t.Logf("%s: %v", stage, got)
		return rep, got
	}
	readOnlyManaged := func(stage string, rep *enforcement.Report) {
		t.Helper()
		for _, row := range rep.Rows {
			if row.Read && planOf[row.ProjectID] == "" {
				t.Errorf("%s: %s (plan %s, alert only) was read on its own", stage, row.ProjectID, row.Plan)
			}
		}
	}

	// A dry run and the first enforce cycle: the list for all, the computes of the 30 managed
	// projects (never seen), no GET; the dry run sends nothing.
	dry, got := run("dry run", enforcement.CycleOptions{DryRun: true})
	checkCalls(t, "dry run", got, dry, wantList, 0)
	if dry.EndpointCalls != len(planOf) || dry.Reads != len(planOf) || dry.Mutations != 0 {
		t.Fatalf("dry run: %d compute reads, %d projects read, %d mutations; want %d, %d, 0", dry.EndpointCalls, dry.Reads, dry.Mutations, len(planOf), len(planOf))
	}
	readOnlyManaged("dry run", dry)
	first, got := run("first cycle", enforcement.CycleOptions{})
	checkCalls(t, "first cycle", got, first, wantList, 0)
	if first.EndpointCalls != len(planOf) || got[routePatch] != int64(len(planOf)) || first.Fleet != len(usage) {
		t.Fatalf("first cycle: %d compute reads, %d project patches, fleet %d; want %d, %d (every managed project tightened), %d",
			first.EndpointCalls, got[routePatch], first.Fleet, len(planOf), len(planOf), len(usage))
	}
	readOnlyManaged("first cycle", first)
	if a, b := actionList(dry), actionList(first); !equal(a, b) {
		t.Fatalf("the dry run planned\n%v\nthe first cycle did\n%v", a, b)
	}

	// Nothing changed: the list again, computes only of projects that wait for a compute that
	// ran since (the list's compute_last_active_at), nothing else.
	f.Clock.Add(10 * time.Minute)
	second, got := run("second cycle", enforcement.CycleOptions{})
	checkCalls(t, "second cycle", got, second, wantList, 0)
	if second.Mutations != 0 || second.EndpointCalls > len(planOf) {
		t.Fatalf("second cycle: %d mutations, %d compute reads", second.Mutations, second.EndpointCalls)
	}
	for _, row := range second.Rows {
		if row.Read && row.Status != enforcement.StatusSuspended && !row.EndpointsPending && row.IdleOverMax == 0 {
			prev, _ := rowOf(first, row.ProjectID)
			if !prev.EndpointsPending && prev.IdleOverMax == 0 {
				t.Errorf("second cycle read %s, which waits for nothing (%+v)", row.ProjectID, row)
			}
		}
	}
	readOnlyManaged("second cycle", second)

	// A deleted project is the one GET: missing from its org's list, 404, gone; not asked again.
	deleted := scale[1]
	f.Sim.DeleteProject(deleted)
	if wantList = wantListCalls(f.Sim, deleted); wantList != 5 {
		t.Fatalf("with 399 scale projects the fleet takes %d list calls, the test expects 5", wantList)
	}
	f.Clock.Add(10 * time.Minute)
	third, got := run("third cycle", enforcement.CycleOptions{})
	checkCalls(t, "third cycle", got, third, wantList, 1)
	if row, _ := rowOf(third, deleted); third.Gone != 1 || row.Outcome != enforcement.OutcomeGone {
		t.Fatalf("third cycle: %d gone, %s outcome %q; want the deleted project gone", third.Gone, deleted, row.Outcome)
	}
	f.Clock.Add(10 * time.Minute)
	fourth, got := run("fourth cycle", enforcement.CycleOptions{})
	checkCalls(t, "fourth cycle", got, fourth, wantList, 0)
}

// TestCalls_FailedListFailsTheCycleAndFallsBackToGets: when an org's project list fails (Neon
// answers 500 to every attempt), the cycle's error names the org, and its projects are read one
// by one within the budget, the most urgent first: the projects over their hard limit are still
// suspended in this cycle.
func TestCalls_FailedListFailsTheCycleAndFallsBackToGets(t *testing.T) {
	var failing atomic.Value // the org whose list fails
	failing.Store("")
	fl := testfleet.New(t, testfleet.Options{Projects: 80, Seed: 11, Now: testNow,
		Wrap: testfleet.Rewrite(func(r *http.Request, status int, body []byte) (int, []byte) {
			if org := failing.Load().(string); r.URL.Path == "/api/v2/projects" && org != "" && r.URL.Query().Get("org_id") == org {
				return http.StatusInternalServerError, []byte(`{"code":"INTERNAL","message":"list unavailable"}`)
			}
			return status, body
		})})
	fl.Client = fl.NewClient(t, func(c *neon.Config) { c.MaxRetries = 2 })
	f := fleetFixture(t, fl)
	over, cat := f.topOverFree(t, 3)
	pol := testPolicy()
	pol.MaxReads = 3
	failing.Store(f.org.ID)
	rep, err := f.reconciler(t, cat, pol, nil).Cycle(context.Background(), enforcement.CycleOptions{})
	if err == nil || !strings.Contains(err.Error(), "list projects of org "+f.org.ID) {
		t.Fatalf("cycle error %v; want the failed list of %s named", err, f.org.ID)
	}
	for _, id := range over {
		if ps, _ := f.Sim.Project(id); !ps.QuotaSuspended {
			row, _ := rowOf(rep, id)
			t.Errorf("%s not suspended: %+v", id, row)
		}
	}
	if rep.GetCalls != 3 || rep.Reads != 3 {
		t.Fatalf("%d GETs, %d projects read; want the budget's 3, the projects over their limit", rep.GetCalls, rep.Reads)
	}
}
