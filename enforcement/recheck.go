package enforcement

import (
	"context"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/neon"
)

// listEntry is what the cheap re-check learns of a project: its project-list entry, or the same
// fields from GET project.
type listEntry struct {
	// LastActive is compute_last_active_at: when a compute of the project last ran.
	LastActive time.Time
	Quota      neon.Quota
	Defaults   neon.DefaultEndpointSettings
}

// watching reports whether a project whose target did not move is re-checked every cycle:
// suspended (a client connection restarts a compute wherever Neon's quota does not hold: on
// Launch its counters stay 0, Neon API notes §6.3), throttled, or with computes waiting for a
// change until they run (endpoint changes pending, computes over the plan's max CU).
func watching(p *project) bool {
	last := p.d.Last
	if last.Gone || p.v.Plan == "" || last.Applied == "" || last.Applied != p.v.Target.Fingerprint() {
		return false // not read, or read anyway
	}
	s := statusOf(last.Applied)
	return s == StatusSuspended || s == StatusThrottled || last.EndpointsPending || last.IdleOverMax > 0
}

// needsRead reports whether a re-checked project must be read in full: a compute ran since the
// last read while the project was suspended or computes waited for that, or Neon's quota or
// default settings no longer match the target.
func needsRead(p *project, e listEntry) bool {
	last := p.d.Last
	waits := statusOf(last.Applied) == StatusSuspended || last.EndpointsPending || last.IdleOverMax > 0
	if waits && e.LastActive.After(last.ObservedAt) {
		return true
	}
	_, differs := projectUpdate(p.v, Observed{Known: true, Quota: e.Quota, Defaults: e.Defaults})
	return differs
}

// recheck is the first part of step 4: every watched project is checked from its list entry,
// so a restarted compute is caught in the next cycle rather than by the drift sampler. Per org
// it takes the project list (one call per 400 projects) when that costs fewer calls than a GET
// per watched project. A project whose entry is missing or could not be had is read in full
// (where a 404 makes it gone). A cycle narrowed to some projects reads them all anyway.
func (r *Reconciler) recheck(ctx context.Context, c *cycleState) {
	c.stale = map[*project]bool{}
	if c.opts.Only != nil {
		return
	}
	byOrg := map[string][]*project{}
	for _, p := range c.projects {
		if watching(p) {
			byOrg[p.d.OrgID] = append(byOrg[p.d.OrgID], p)
		}
	}
	if len(byOrg) == 0 {
		return
	}
	orgSize := map[string]int{}
	for _, d := range c.ev.Projects {
		orgSize[d.OrgID]++
	}
	orgs := make([]string, 0, len(byOrg))
	for org := range byOrg {
		orgs = append(orgs, org)
	}
	sort.Strings(orgs)
	for _, org := range orgs {
		ps := byOrg[org]
		entries := r.entries(ctx, c, org, ps, orgSize[org])
		for _, p := range ps {
			c.rep.Rechecked++
			if e, ok := entries[p.d.ProjectID]; !ok || needsRead(p, e) {
				c.stale[p] = true
			}
		}
	}
}

// entries fetches the list entries of an org's watched projects: from the org's project list
// when it takes fewer calls than one GET per project (and the org is known), else by GET. A
// failed list leaves every project to a full read.
func (r *Reconciler) entries(ctx context.Context, c *cycleState, org string, ps []*project, orgSize int) map[string]listEntry {
	out := make(map[string]listEntry, len(ps))
	pages := (orgSize + neon.MaxProjectsLimit - 1) / neon.MaxProjectsLimit
	if org == "" || pages >= len(ps) {
		for _, p := range ps {
			c.rep.RecheckCalls++
			pr, err := r.cfg.Neon.GetProject(ctx, p.d.ProjectID)
			if err == nil {
				out[p.d.ProjectID] = listEntry{LastActive: pr.ComputeLastActiveAt, Quota: pr.Settings.Quota, Defaults: pr.DefaultEndpointSettings}
			}
		}
		return out
	}
	want := make(map[string]bool, len(ps))
	for _, p := range ps {
		want[p.d.ProjectID] = true
	}
	for page, err := range r.cfg.Neon.ListProjects(ctx, neon.ListProjectsQuery{OrgID: org, Limit: neon.MaxProjectsLimit}) {
		c.rep.RecheckCalls++
		if err != nil {
			// Handled: the projects are read in full instead, which fails loudly if Neon does.
			r.log.Warn("enforcement re-check: project list failed; reading the watched projects in full", logkey.RunID, c.rep.CycleID,
				logkey.OrgID, org, "projects", len(ps), logkey.Err, err)
			return map[string]listEntry{}
		}
		for _, s := range page.Projects {
			if want[s.ID] {
				out[s.ID] = listEntry{LastActive: s.ComputeLastActiveAt, Quota: s.Settings.Quota, Defaults: s.DefaultEndpointSettings}
			}
		}
		if len(out) == len(want) {
			break
		}
	}
	return out
}
