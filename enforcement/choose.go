package enforcement

import (
	"slices"
	"strconv"
	"strings"
)

// Urgency of the projects given per-project calls (choose): lower goes first.
const (
	urgentEnforce = iota // newly suspended or throttled
	urgentRecheck        // a compute ran while the project was suspended or computes waited for it
	urgentMoved          // the target moved (restore, release, plan change), settings changed by hand, or no list showed it
	urgentFirst          // never managed, or its computes never seen: the most recently active first
)

// choose is step 5's choice: which projects get calls of their own this cycle. The list decided
// the settings of every project it showed; a project needs calls of its own only for a GET when
// no list showed it, a read of its computes where they matter (computesToRead), or, in enforce
// mode, a change of its settings. Those are taken most urgent first, at most Policy.MaxReads,
// then up to DriftReads projects settled otherwise whose computes were read least recently (to
// find computes changed by hand). The rest of the fleet is settled from the list alone: what a
// dry run plans costs no call, so a dry run plans the settings of the whole fleet, those beyond
// the budget too. A cycle narrowed to some projects reads them all, computes too.
func choose(c *cycleState) {
	c.chosen, c.settled = map[*project]bool{}, map[*project]bool{}
	var want, sample []*project
	for _, p := range c.projects {
		e, seen := c.entries[p.d.ProjectID]
		switch {
		case p.v.Plan == "":
			continue // nothing is done
		case c.opts.Only != nil:
			p.computes = true
			c.chosen[p] = true
			continue
		case !seen && p.d.Last.Gone:
			continue // and no list shows it back
		case seen:
			p.computes = computesToRead(p, e)
			if !p.computes && (c.mode != ModeEnforce || !settingsDiffer(p, e, c.pol)) {
				c.settled[p] = true
				if computeRules(p.v) {
					sample = append(sample, p)
				}
				continue
			}
		}
		p.urgency, p.lastActive = urgencyOf(p, e, seen), e.LastActive
		want = append(want, p)
	}
	slices.SortStableFunc(want, func(a, b *project) int {
		if a.urgency != b.urgency {
			return a.urgency - b.urgency
		}
		if a.urgency == urgentFirst { // running computes are the ones a cap can act on
			return b.lastActive.Compare(a.lastActive)
		}
		return 0
	})
	take := want[:min(len(want), c.pol.MaxReads)]
	for _, p := range take {
		c.chosen[p] = true
	}
	for _, p := range want[len(take):] {
		// Beyond the budget: a plan costs no call, so a dry run still plans the settings from the
		// list; the computes wait for a later cycle (so does the memory: partial).
		if _, seen := c.entries[p.d.ProjectID]; seen && c.mode != ModeEnforce {
			c.settled[p], p.partial = true, true
		}
	}
	slices.SortStableFunc(sample, func(a, b *project) int { return a.d.Last.ObservedAt.Compare(b.d.Last.ObservedAt) })
	for _, p := range sample[:min(len(sample), c.pol.DriftReads, c.pol.MaxReads-len(take))] {
		p.computes = true
		c.chosen[p] = true
		delete(c.settled, p)
	}
	c.countRechecks()
}

// urgencyOf places a project that needs calls of its own (choose).
func urgencyOf(p *project, e listEntry, seen bool) int {
	last := p.d.Last
	switch {
	case p.v.Enforces:
		return urgentEnforce
	case seen && watching(p) && waits(last) && e.LastActive.After(last.ObservedAt):
		return urgentRecheck
	case last.Applied != "" && last.Applied != p.v.Target.Fingerprint():
		return urgentMoved
	case last.Applied == "" || last.ObservedAt.IsZero():
		return urgentFirst
	}
	return urgentMoved
}

// computeRules reports whether a project's computes can need a change under its target:
// suspended or throttled, a plan max CU to hold them to, or ranges to give back.
func computeRules(v Verdict) bool {
	t := v.Target
	return t.Status == StatusSuspended || t.Status == StatusThrottled || t.RestoreMaxCU > 0 ||
		strings.Contains(v.Next.Prior, "e=") && len(parsePrior(v.Next.Prior).Endpoints) > 0
}

// computesToRead reports whether a project's computes must be read (GET …/endpoints): only
// those show whether a compute runs and its autoscaling range. They are read when the target
// calls for compute changes and: the project is newly suspended or throttled, its computes
// were never seen, the target's status or max CU moved, or the list shows a compute ran since
// they were last read while something waited for that (a suspended project restarted by a
// connection where Neon's quota does not hold, Neon API notes §6.3; a throttle, restore or cap
// waiting for an idle compute to run).
func computesToRead(p *project, e listEntry) bool {
	v, last := p.v, p.d.Last
	switch {
	case !computeRules(v):
		return false
	case v.Enforces, last.Applied == "", last.ObservedAt.IsZero(), computesMoved(last.Applied, v.Target):
		return true
	}
	return waits(last) && e.LastActive.After(last.ObservedAt)
}

// computesMoved reports whether what computes get changed since the target last applied: its
// status, or the max CU of its default settings (the plan's, or the throttle's floor).
func computesMoved(applied string, t Target) bool {
	if statusOf(applied) != t.Status {
		return true
	}
	_, d, _ := strings.Cut(applied, " d=")
	f := strings.Split(d, ",")
	if len(f) != 3 {
		return true
	}
	maxCU, err := strconv.ParseFloat(f[1], 64)
	return err != nil || maxCU != t.Defaults.AutoscalingLimitMaxCU
}

// waits reports whether something of the project waits for a compute to run: a suspension to
// hold, or a compute change held until the compute is active.
func waits(last Memory) bool {
	return statusOf(last.Applied) == StatusSuspended || last.EndpointsPending || last.IdleOverMax > 0
}

// watching reports whether a project whose target did not move is re-checked from its list
// entry every cycle: suspended, throttled, or with computes waiting for a change until they
// run (endpoint changes pending, computes over the plan's max CU).
func watching(p *project) bool {
	last := p.d.Last
	if last.Gone || p.v.Plan == "" || last.Applied == "" || last.Applied != p.v.Target.Fingerprint() {
		return false
	}
	s := statusOf(last.Applied)
	return s == StatusSuspended || s == StatusThrottled || waits(last)
}

// settingsDiffer reports whether the project's quota or default settings, as the list shows
// them, differ from its target.
func settingsDiffer(p *project, e listEntry, pol Policy) bool {
	o := e.observed()
	_, differs := projectUpdate(notePrior(p.d, p.v, o, pol), o)
	return differs
}

// countRechecks reports the watched projects the list showed, and the list calls of their orgs.
func (c *cycleState) countRechecks() {
	orgs := map[string]bool{}
	for _, p := range c.projects {
		if _, seen := c.entries[p.d.ProjectID]; seen && c.opts.Only == nil && watching(p) {
			c.rep.Rechecked++
			orgs[c.entries[p.d.ProjectID].OrgID] = true
		}
	}
	for org := range orgs {
		c.rep.RecheckCalls += c.orgPages[org]
	}
}
