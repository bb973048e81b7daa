package enforcement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// listEntry is what the project list shows of a project (or GET project, where a cycle takes no
// list): all a cycle needs to decide the project's settings and whether its computes must be read.
type listEntry struct {
	OrgID string
	// LastActive is compute_last_active_at: when a compute of the project last ran (zero: never).
	LastActive time.Time
	Quota      neon.Quota
	Defaults   neon.DefaultEndpointSettings
}

func entryOfSummary(s neon.ProjectSummary) listEntry {
	return listEntry{OrgID: s.OrgID, LastActive: s.ComputeLastActiveAt, Quota: s.Settings.Quota, Defaults: s.DefaultEndpointSettings}
}

func entryOfProject(p *neon.Project) listEntry {
	return listEntry{OrgID: p.OrgID, LastActive: p.ComputeLastActiveAt, Quota: p.Settings.Quota, Defaults: p.DefaultEndpointSettings}
}

// observed is the entry as an observation of the project's settings; its computes are not read.
func (e listEntry) observed() Observed {
	return Observed{Known: true, Quota: e.Quota, Defaults: e.Defaults, SettingsOnly: true}
}

// Neon calls a cycle counts (Report and neonmeter_enforcement_neon_calls_total); mutations are
// counted by their ActionKind.
const (
	callListProjects = "list_projects"
	callGetProject   = "get_project"
	callListComputes = "list_endpoints"
)

// called counts one Neon call of the cycle.
func (r *Reconciler) called(c *cycleState, call string) {
	switch call {
	case callListProjects:
		c.rep.ListCalls++
	case callGetProject:
		c.rep.GetCalls++
	case callListComputes:
		c.rep.EndpointCalls++
	}
	r.cfg.Metrics.countCall(call)
}

// survey is step 2: the cycle's observation of Neon. A full cycle lists every org it knows (the
// orgs of its projects and those the collector covers), 400 projects a call: settings and
// compute_last_active_at for the whole fleet in ⌊n/400⌋+1 calls per org of n projects. A cycle
// narrowed to some projects GETs each instead (one call, not the org's list). Then each project's
// org, when storage did not know it, comes from the list, and its freshness is judged again with
// what the list says of its computes (freshness.of).
func (r *Reconciler) survey(ctx context.Context, c *cycleState) {
	c.entries, c.readErr, c.orgPages = map[string]listEntry{}, map[string]error{}, map[string]int{}
	if c.opts.Only != nil {
		for _, p := range c.projects {
			if p.d.Plan == nil {
				continue // nothing is done to a project on an unknown plan
			}
			if pr, err := r.getProject(ctx, c, p.d.ProjectID); err != nil {
				c.readErr[p.d.ProjectID] = err
			} else {
				c.entries[p.d.ProjectID] = entryOfProject(pr)
			}
		}
	} else {
		for _, org := range c.orgs() {
			r.listOrg(ctx, c, org)
		}
	}
	for _, p := range c.projects {
		e, seen := c.entries[p.d.ProjectID]
		if seen && p.d.OrgID == "" {
			p.d.OrgID = e.OrgID
		}
		p.d.Fresh = c.ev.fresh.of(&p.d, e.LastActive, seen)
	}
}

// orgs are the orgs a full cycle lists, sorted: its projects' and the collector's (which finds
// the projects whose org storage does not know, such as all of them early in a period).
func (c *cycleState) orgs() []string {
	set := map[string]bool{}
	for _, org := range c.ev.Orgs {
		set[org] = true
	}
	for _, p := range c.projects {
		if p.d.OrgID != "" {
			set[p.d.OrgID] = true
		}
	}
	out := make([]string, 0, len(set))
	for org := range set {
		out = append(out, org)
	}
	slices.Sort(out)
	return out
}

// listOrg pages through one org's project list. A failed list fails the cycle (its error names
// the org) after the pages it got: the org's projects it did not show are read one by one,
// within the budget, the most urgent first (choose).
func (r *Reconciler) listOrg(ctx context.Context, c *cycleState, org string) {
	calls, open := 0, true
	for page, err := range r.cfg.Neon.ListProjects(ctx, neon.ListProjectsQuery{OrgID: org, Limit: neon.MaxProjectsLimit}) {
		calls++
		if err != nil {
			// Not logged here: the cycle's error carries it.
			open = false
			c.failures = append(c.failures, fmt.Errorf("list projects of org %s: %w", org, err))
			break
		}
		for _, s := range page.Projects {
			c.entries[s.ID] = entryOfSummary(s)
		}
		open = page.Cursor != ""
	}
	// The iterator yields no empty page: the request that found the list empty, or that a full
	// page with a cursor was the last, is counted here.
	if calls == 0 || open {
		calls++
	}
	c.orgPages[org] = calls
	for range calls {
		r.called(c, callListProjects)
	}
}

// getProject reads one project (where no list shows it).
func (r *Reconciler) getProject(ctx context.Context, c *cycleState, id string) (*neon.Project, error) {
	r.called(c, callGetProject)
	pr, err := r.cfg.Neon.GetProject(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	return pr, nil
}

// readProject is steps 5 to 7 for a project given per-project calls (choose): a GET where no
// list showed it, its computes where they matter (needs), then plan and apply. A 404 makes it
// gone.
func (r *Reconciler) readProject(ctx context.Context, c *cycleState, p *project) {
	p.row.Read = true
	c.rep.Reads++
	r.cfg.Metrics.countRead()
	err := c.readErr[p.d.ProjectID]
	e, seen := c.entries[p.d.ProjectID]
	if err == nil && !seen {
		var pr *neon.Project
		if pr, err = r.getProject(ctx, c, p.d.ProjectID); err == nil {
			e = entryOfProject(pr)
			p.computes = p.computes || computesToRead(p, e)
		}
	}
	o := e.observed()
	if err == nil && p.computes {
		r.called(c, callListComputes)
		if o.Endpoints, err = r.cfg.Neon.ListEndpoints(ctx, p.d.ProjectID); err != nil {
			err = fmt.Errorf("observe: %w", err)
		}
		o.SettingsOnly = false
	}
	switch {
	case errors.Is(err, neon.ErrNotFound):
		c.gone(p, err)
	case err != nil:
		c.fail(p, err, err)
	default:
		r.planApply(ctx, c, p, o)
	}
}

// planApply is steps 6 and 7: the minimal diff of the target and what Neon has (PlanVerdict),
// applied. When only the settings were observed, what waited for the computes still waits.
func (r *Reconciler) planApply(ctx context.Context, c *cycleState, p *project, o Observed) {
	p.v = notePrior(p.d, p.v, o, c.pol)
	p.next.Gone, p.next.Prior = false, p.v.Next.Prior
	acts, pending := PlanVerdict(p.v, o, c.pol)
	if o.SettingsOnly {
		pending = p.next.EndpointsPending
	} else {
		p.next.IdleOverMax = IdleOverMax(p.v, o)
	}
	p.row.Actions, p.row.EndpointsPending, p.row.IdleOverMax, p.row.Outcome = acts, pending, p.next.IdleOverMax, ""
	r.apply(ctx, c, p, acts, pending, !o.SettingsOnly)
}

// observe reads one project whole, settings and computes (explain); both are GETs and neither
// wakes a compute. The entry carries compute_last_active_at, for freshness.
func observe(ctx context.Context, n Neon, projectID string) (Observed, listEntry, error) {
	p, err := n.GetProject(ctx, projectID)
	if err != nil {
		return Observed{}, listEntry{}, fmt.Errorf("observe: %w", err)
	}
	eps, err := n.ListEndpoints(ctx, projectID)
	if err != nil {
		return Observed{}, listEntry{}, fmt.Errorf("observe: %w", err)
	}
	e := entryOfProject(p)
	o := e.observed()
	o.Endpoints, o.SettingsOnly = eps, false
	return o, e, nil
}
