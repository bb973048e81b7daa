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
}

// Load reads everything a cycle needs from storage, never from Neon: one usage query for the whole fleet,
// the plans in force (accounts), the collector's watermarks and the remembered states. It is
// step 1 of a cycle; Explain uses it too.
func (r *Reconciler) Load(ctx context.Context, now time.Time) (*Evaluated, error) {
	ev := &Evaluated{Now: now, Period: plans.PeriodStart(now), Projects: map[string]*Desired{}}
	if err := r.loadUsage(ctx, ev); err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	assigned, err := r.loadPlans(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	fresh, allFresh, err := r.freshness(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	if ev.States, err = r.cfg.Store.States(ctx); err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	for id, s := range ev.States {
		ev.project(id).Last = memoryOf(s)
	}
	for _, d := range ev.Projects {
		if d.OrgID != "" {
			d.Fresh = fresh[d.OrgID]
		} else {
			d.Fresh = allFresh
		}
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

// freshness says per org whether the collector's data is fresh: the org's newest hourly
// watermark is within Policy.StaleAfter. allFresh is for projects whose org is unknown (no
// usage this period): they are judged by the stalest org.
func (r *Reconciler) freshness(ctx context.Context, now time.Time) (fresh map[string]bool, allFresh bool, err error) {
	wms, err := r.cfg.Store.HourlyWatermarks(ctx)
	if err != nil {
		return nil, false, err
	}
	fresh = map[string]bool{}
	for _, w := range wms {
		ok := now.Sub(w.CoveredUntil) <= r.cfg.Policy.StaleAfter
		fresh[w.OrgID] = fresh[w.OrgID] || ok
	}
	allFresh = len(wms) > 0
	for _, ok := range fresh {
		allFresh = allFresh && ok
	}
	return fresh, allFresh, nil
}
