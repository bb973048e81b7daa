package enforcement

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/plans"
)

// Evaluated is the fleet's evaluation before Neon is read.
type Evaluated struct {
	Now      time.Time
	Period   time.Time
	Projects map[string]*Desired
	States   map[string]State
	// Orgs are the orgs the collector covers (its hourly watermarks), sorted.
	Orgs  []string
	fresh freshness
}

// Load reads everything a cycle needs from storage, never from Neon: one usage query for the whole fleet,
// the plans in force (accounts), the collector's progress and watermarks and the remembered
// states. It is step 1 of a cycle; Explain uses it too. Desired.Fresh is judged from storage
// alone; a cycle judges it again once the project list says which projects ran (freshness.of).
func (r *Reconciler) Load(ctx context.Context, now time.Time) (*Evaluated, error) {
	ev := &Evaluated{Now: now, Period: plans.PeriodStart(now), Projects: map[string]*Desired{}}
	if err := r.loadUsage(ctx, ev); err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	assigned, err := r.loadPlans(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	if err := r.loadFreshness(ctx, ev); err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	if ev.States, err = r.cfg.Store.States(ctx); err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	for id, s := range ev.States {
		ev.project(id).Last = memoryOf(s)
	}
	for _, d := range ev.Projects {
		if d.OrgID == "" {
			d.OrgID = ev.fresh.org[d.ProjectID]
		}
		d.Fresh = ev.fresh.of(d, time.Time{}, false)
		if d.Plan == nil && !assigned[d.ProjectID] {
			// Known from state only (no account, no usage): the default plan applies. A plan the
			// catalog does not know stays nil (nothing is done): judging a customer's own plan by
			// the default one would suspend a paying customer.
			d.Plan, _ = r.cfg.Catalog.Plan(r.cfg.DefaultPlan)
		}
	}
	return ev, nil
}

// project returns the project's entry, added when missing.
func (ev *Evaluated) project(id string) *Desired {
	d := ev.Projects[id]
	if d == nil {
		d = &Desired{ProjectID: id, PeriodStart: ev.Period, Usage: map[string]uint64{}}
		ev.Projects[id] = d
	}
	return d
}

// loadUsage reads the period-to-date usage of every project and metric: the sum of the hours,
// or for a size metric the largest hour.
func (r *Reconciler) loadUsage(ctx context.Context, ev *Evaluated) error {
	return r.cfg.Store.UsageSince(ctx, ev.Period, ev.Now.Add(time.Hour), func(u PeriodUsage) {
		d := ev.project(u.ProjectID)
		d.OrgID = u.OrgID
		d.Usage[u.Metric] = u.Judged()
	})
}

// loadPlans sets the plan in force now of every project with usage or an account; it returns
// the projects with an account (whose plan stays nil when the catalog lacks it).
func (r *Reconciler) loadPlans(ctx context.Context, ev *Evaluated) (map[string]bool, error) {
	withUsage := make([]string, 0, len(ev.Projects))
	for id := range ev.Projects {
		withUsage = append(withUsage, id)
	}
	sort.Strings(withUsage)
	as, err := accounts.AssignmentsAt(ctx, r.cfg.Accounts, ev.Now, withUsage, r.cfg.DefaultPlan)
	if err != nil {
		return nil, err
	}
	assigned := make(map[string]bool, len(as))
	for _, a := range as {
		d := ev.project(a.ProjectID)
		assigned[a.ProjectID] = true
		if p, ok := r.cfg.Catalog.Plan(a.Plan); ok {
			d.Plan = p
		}
	}
	return assigned, nil
}

// freshness judges whether the collector's data on a project is recent enough to act on
// (Desired.Fresh).
type freshness struct {
	now        time.Time
	staleAfter time.Duration
	// orgFresh: the org's newest hourly watermark is within staleAfter; allFresh: every org's is
	// (for projects whose org is unknown).
	orgFresh map[string]bool
	allFresh bool
	// through is each project's collection_progress.complete_through, org its org.
	through map[string]time.Time
	org     map[string]string
}

// of judges a project. With a progress row it is fresh when its hours are complete up to
// staleAfter ago, or when it is seen (the project list, or GET project) and its computes have
// not run since they are: an idle project's usage does not grow while the collector is behind
// on it. (Storage accrues hourly whatever the computes do, but period sums only grow, so late
// hours delay a suspension and never fake a restore.) Without a row (collectors before
// collection_progress) its org's watermark decides.
func (f freshness) of(d *Desired, lastActive time.Time, seen bool) bool {
	if ct, ok := f.through[d.ProjectID]; ok {
		return f.now.Sub(ct) <= f.staleAfter || seen && !lastActive.After(ct)
	}
	if d.OrgID != "" {
		return f.orgFresh[d.OrgID]
	}
	return f.allFresh
}

// loadFreshness reads the collector's per-project progress and per-org hourly watermarks; the
// orgs of the watermarks are the orgs a cycle lists.
func (r *Reconciler) loadFreshness(ctx context.Context, ev *Evaluated) error {
	wms, err := r.cfg.Store.HourlyWatermarks(ctx)
	if err != nil {
		return err
	}
	progress, err := r.cfg.Store.Progress(ctx)
	if err != nil {
		return err
	}
	f := freshness{now: ev.Now, staleAfter: r.cfg.Policy.StaleAfter, orgFresh: map[string]bool{},
		through: make(map[string]time.Time, len(progress)), org: make(map[string]string, len(progress))}
	for _, w := range wms {
		ok := ev.Now.Sub(w.CoveredUntil) <= f.staleAfter
		f.orgFresh[w.OrgID] = f.orgFresh[w.OrgID] || ok
	}
	f.allFresh = len(wms) > 0
	for org, ok := range f.orgFresh {
		f.allFresh = f.allFresh && ok
		ev.Orgs = append(ev.Orgs, org)
	}
	sort.Strings(ev.Orgs)
	for _, p := range progress {
		f.through[p.ProjectID], f.org[p.ProjectID] = p.CompleteThrough, p.OrgID
	}
	ev.fresh = f
	return nil
}
