package enforcement_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/plans"
)

// atRiskOfOrg reads the at-risk set as the collector does.
func (f *fixture) atRiskOfOrg(t *testing.T, org string) []string {
	t.Helper()
	var out []string
	err := collectorstore.New(f.Conn, f.DB).ScanAtRisk(context.Background(), org, func(id string) error {
		out = append(out, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAtRisk_PublishesChangesOnly: enforcement publishes, for the collector to keep freshest,
// the projects near or over a limit on a plan with hard limits (a hard limit at warning or
// over, or suspended): soft-limited and alert-only plans are not at risk. A row is written only
// when a project enters or leaves the set, so a steady fleet writes nothing; an upgrade takes
// a project out; an explicit dry run publishes nothing.
func TestAtRisk_PublishesChangesOnly(t *testing.T) {
	f := newFixture(t, 80)
	f.collect(t)
	usage := f.usage(t)
	ids := byUsage(usage)
	if len(ids) < 12 {
		t.Fatalf("only %d projects with usage", len(ids))
	}
	// free's hard limit at the 4th largest usage: 4 over; the next with 80 % or more warn.
	limit := usage[ids[3]]
	planOf := map[string]string{}
	var want []string
	for i, id := range ids[:10] {
		planOf[id] = "free"
		if usage[id]*10 >= limit*8 {
			want = append(want, id)
		}
		if i >= 8 {
			planOf[id] = "pro" // soft limit: never at risk
		}
	}
	want = slices.DeleteFunc(want, func(id string) bool { return planOf[id] != "free" })
	if len(want) < 5 {
		t.Fatalf("only %d free projects at warning or over; the test needs some at warning too", len(want))
	}
	slices.Sort(want)
	cat := catalog(t, limit, limit, 1, usage[ids[0]]*10) // the default plan (enterprise) is over, but alert only
	f.assign(t, cat, plans.PeriodStart(testNow).AddDate(0, 0, -1), planOf)
	r := f.reconciler(t, cat, testPolicy(), nil)
	rows := func() uint64 { return chtest.Count(t, f.Conn, "SELECT count() FROM "+f.DB+".enforcement_at_risk") }

	rep := cycle(t, r)
	if got := f.atRiskOfOrg(t, f.org.ID); strings.Join(got, ",") != strings.Join(want, ",") || rep.AtRisk != len(want) ||
		rep.AtRiskEntered != len(want) || rows() != uint64(len(want)) {
		t.Fatalf("first cycle: the collector reads %v (report: %d at risk, %d entered; %d rows); want %v", got, rep.AtRisk, rep.AtRiskEntered, rows(), want)
	}
	f.Clock.Add(10 * time.Minute)
	if rep := cycle(t, r); rep.AtRiskEntered != 0 || rep.AtRiskLeft != 0 || rows() != uint64(len(want)) {
		t.Fatalf("steady cycle: %d entered, %d left, %d rows; want nothing written", rep.AtRiskEntered, rep.AtRiskLeft, rows())
	}

	// The most over project moves to a plan far above its usage: it leaves the set.
	f.Clock.Add(10 * time.Minute)
	f.assign(t, cat, f.Clock.Now(), map[string]string{ids[0]: "bigscale"})
	if _, err := r.Cycle(context.Background(), enforcement.CycleOptions{DryRun: true}); err != nil || rows() != uint64(len(want)) {
		t.Fatalf("a dry run wrote at-risk rows (%d) or failed: %v", rows(), err)
	}
	rep = cycle(t, r)
	left := slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id == ids[0] })
	if got := f.atRiskOfOrg(t, f.org.ID); strings.Join(got, ",") != strings.Join(left, ",") || rep.AtRiskLeft != 1 || rep.AtRiskEntered != 0 ||
		rows() != uint64(len(want)+1) {
		t.Fatalf("after the upgrade: the collector reads %v (%d left, %d entered, %d rows); want %v", got, rep.AtRiskLeft, rep.AtRiskEntered, rows(), left)
	}
	if got := f.atRiskOfOrg(t, "org-elsewhere"); len(got) != 0 {
		t.Fatalf("another org reads %v", got)
	}
}
