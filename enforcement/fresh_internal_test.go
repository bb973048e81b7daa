package enforcement

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// freshness.of: a progress row decides by its age, or by the list showing no compute activity
// since it; without a row the org's watermark decides (the stalest org's for an unknown org).
func TestFreshness_Of(t *testing.T) {
	now := time.Date(2026, 11, 2, 12, 40, 0, 0, time.UTC)
	f := freshness{now: now, staleAfter: 3 * time.Hour, orgFresh: map[string]bool{"org-fresh": true, "org-stale": false},
		through: map[string]time.Time{"recent": now.Add(-2 * time.Hour), "old": now.Add(-5 * time.Hour)}}
	old := now.Add(-5 * time.Hour)
	cases := []struct {
		name, id, org string
		lastActive    time.Time
		seen, all     bool
		want          bool
	}{
		{"progress within the bound", "recent", "org-stale", now, true, false, true},
		{"old progress, ran since", "old", "org-fresh", old.Add(time.Minute), true, true, false},
		{"old progress, idle since", "old", "org-stale", old.Add(-time.Hour), true, false, true},
		{"old progress, last active at it", "old", "org-stale", old, true, false, true},
		{"old progress, never active", "old", "org-stale", time.Time{}, true, false, true},
		{"old progress, not seen", "old", "org-fresh", time.Time{}, false, true, false},
		{"no row: the org's watermark", "other", "org-fresh", now, true, false, true},
		{"no row, stale org", "other", "org-stale", time.Time{}, true, true, false},
		{"no row, unknown org: every org fresh", "other", "", time.Time{}, false, true, true},
		{"no row, unknown org: one org stale", "other", "", time.Time{}, false, false, false},
	}
	for _, c := range cases {
		f.allFresh = c.all
		if got := f.of(&Desired{ProjectID: c.id, OrgID: c.org}, c.lastActive, c.seen); got != c.want {
			t.Errorf("%s: fresh %v, want %v", c.name, got, c.want)
		}
	}
}

// computesMoved: what computes get changes with the status or the default max CU of the target.
func TestComputesMoved(t *testing.T) {
	normal := Target{Status: StatusNormal, Defaults: defaultsOf(0.25, 0.5)}
	for _, c := range []struct {
		applied string
		t       Target
		want    bool
	}{
		{normal.Fingerprint(), normal, false},
		{Target{Status: StatusThrottled, Defaults: defaultsOf(0.25, 0.25)}.Fingerprint(), normal, true},
		{Target{Status: StatusNormal, Defaults: defaultsOf(0.25, 4)}.Fingerprint(), normal, true},
		{Target{Status: StatusNormal, Defaults: defaultsOf(0.25, 0.5)}.Fingerprint(), Target{Status: StatusSuspended, Defaults: defaultsOf(0.25, 0.5)}, true},
		{"normal garbled", normal, true},
	} {
		if got := computesMoved(c.applied, c.t); got != c.want {
			t.Errorf("computesMoved(%q, %s) = %v, want %v", c.applied, c.t.Fingerprint(), got, c.want)
		}
	}
}

func defaultsOf(minCU, maxCU float64) neon.DefaultEndpointSettings {
	return neon.DefaultEndpointSettings{AutoscalingLimitMinCU: minCU, AutoscalingLimitMaxCU: maxCU}
}
