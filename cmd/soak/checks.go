package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/schema"
)

// maxExamples is how many differences a check quotes.
const maxExamples = 8

// check is one row of the final table: what was compared, how many values, how many differ.
type check struct {
	name     string
	compared int64
	bad      int64
	detail   string
	examples []string
	// unjudged marks a row that measures without a pass/fail rule yet (it never fails the run).
	unjudged bool
}

func (c *check) fail(format string, a ...any) {
	c.bad++
	if len(c.examples) < maxExamples {
		c.examples = append(c.examples, fmt.Sprintf(format, a...))
	}
}

func (c *check) ok() bool { return c.unjudged || c.bad == 0 }

// storedProject is one project's stored hours, as ClickHouse groups them.
type storedProject struct {
	id      string
	metrics []string
	hours   []time.Time
	values  []uint64
}

// checkUsage compares every (project, metric, hour) of [from, to) stored in usage_facts (its
// latest version, as usage_hourly shows it) with the simulator's ground truth, for every
// collected project. Deleted projects are a second row, compared up to the hour they were
// deleted (the simulator keeps their usage running afterwards, which Neon does not): the
// collector never reads a project again once it left the project list, so the hours between
// its last collection and its deletion, and later revisions of earlier hours, are missing.
// That row is measured, not judged, until the collector reads departed projects once more.
//
// A live project's cell that differs only because Neon revised it more than the provisional
// window after its hour (stored below the truth, in the hours a Revise changed) is counted in
// a third row, also measured: the budgeted collector re-reads an active project's provisional
// hours only, so a later revision waits until the project falls to the rolling sweep.
func (w *world) checkUsage(ctx context.Context, from, to time.Time, only map[string]bool) (live, revised, gone check, err error) {
	u := usageCheck{w: w, from: from, hours: int(to.Sub(from) / time.Hour),
		live:    check{name: "usage_hourly = simulator truth, every (project, metric, hour)"},
		revised: check{name: "usage_hourly = truth where Neon revised hours more than 2 h late", unjudged: true},
		gone:    check{name: "usage_hourly = truth for deleted projects, up to their deletion", unjudged: true}}
	for _, org := range w.orgs {
		ids := slices.Sorted(slices.Values(org.ProjectIDs))
		if only != nil {
			ids = slices.DeleteFunc(ids, func(id string) bool { return !only[id] })
		}
		for k := 0; k < len(ids); k += usageChunk {
			chunk := ids[k:min(k+usageChunk, len(ids))]
			// The first and last chunks reach past the org's ids, so rows of projects it does not
			// have are read too.
			lo, hi := chunk[0], chunk[len(chunk)-1]
			if k == 0 && only == nil {
				lo = ""
			}
			if k+usageChunk >= len(ids) && only == nil {
				hi = "\U0010FFFF"
			}
			if err := u.compareChunk(ctx, org.ID, chunk, lo, hi, to); err != nil {
				return u.live, u.revised, u.gone, fmt.Errorf("read usage of %s: %w", org.ID, err)
			}
		}
	}
	u.live.detail = fmt.Sprintf("%d hours, %d orgs, every project still in Neon", u.hours, len(w.orgs))
	u.revised.detail = fmt.Sprintf("%d revisions; cells stored below the truth in the hours they changed, more than 2 h after the hour", len(w.revisions))
	u.gone.detail = fmt.Sprintf("%d deleted projects; %d cells after their deletion not compared", len(w.deleted), u.skipped)
	return u.live, u.revised, u.gone, nil
}

// usageChunk is how many projects one usage query reads: small queries keep a loaded server
// answering within the client's read timeout.
const usageChunk = 250

// usageCheck accumulates checkUsage's three rows.
type usageCheck struct {
	w                   *world
	from                time.Time
	hours               int
	skipped             int64
	live, revised, gone check
}

// compareChunk reads the stored hours of an org's projects with ids in [lo, hi] and compares
// those of chunk with the truth; any other project's row is an error of the org.
func (u *usageCheck) compareChunk(ctx context.Context, org string, chunk []string, lo, hi string, to time.Time) error {
	stored := map[string]*storedProject{}
	err := storedHours(org, lo, hi, u.from, to).Each(ctx, u.w.conn, u.w.o.Database, func(r schema.Row) error {
		sp := &storedProject{}
		if err := r.Scan(&sp.id, &sp.metrics, &sp.hours, &sp.values); err != nil {
			return err
		}
		stored[sp.id] = sp
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range chunk {
		u.compareProject(id, stored[id])
		delete(stored, id)
	}
	for id := range stored {
		u.live.fail("%s: stored in org %s, which has no such project", id, org)
	}
	return nil
}

// compareProject compares one project's stored cells (nil: none) with the truth, each in the
// row it belongs to.
func (u *usageCheck) compareProject(id string, sp *storedProject) {
	w, hours, from := u.w, u.hours, u.from
	c := &u.live
	names := w.sim.RouteMetrics(id)
	truth := make([]int64, len(names)*hours)
	h := 0
	w.sim.HourlyTruth(id, from, from.Add(time.Duration(hours)*time.Hour), func(_ time.Time, v []int64) {
		for m, x := range v {
			truth[m*hours+h] = x
		}
		h++
	})
	limit := hours
	if at, deleted := w.deleted[id]; deleted {
		c = &u.gone
		limit = min(hours, max(0, int(at.Truncate(time.Hour).Sub(from)/time.Hour)))
		u.skipped += int64((hours - limit) * len(names))
	}
	got := make([]int64, len(truth))
	if sp != nil {
		for k, x := range sp.values {
			m, hh := slices.Index(names, sp.metrics[k]), int(sp.hours[k].Sub(from)/time.Hour)
			if m < 0 {
				c.fail("%s: metric %s is not on its route (stored %d)", id, sp.metrics[k], x)
				continue
			}
			got[m*hours+hh] = int64(x)
		}
	}
	for cell := range truth {
		m, hh := cell/hours, cell%hours
		if hh >= limit {
			continue
		}
		at := from.Add(time.Duration(hh) * time.Hour)
		into := c
		if c == &u.live && got[cell] < truth[cell] && w.revisedLate(at) {
			into = &u.revised
		}
		into.compared++
		if truth[cell] != got[cell] {
			into.fail("%s %s %s: stored %d, truth %d", id, names[m], at.Format(time.RFC3339), got[cell], truth[cell])
		}
	}
}

// revisedLate reports whether a Revise changed the hour starting at h more than the 2 h
// provisional window after it ended.
func (w *world) revisedLate(h time.Time) bool {
	for _, r := range w.revisions {
		if !h.Before(r.from) && h.Before(r.to) && r.to.Sub(h) > 3*time.Hour {
			return true
		}
	}
	return false
}

// storedHours reads an org's stored, non-zero hours of [from, to) for project ids in [lo, hi]:
// one row per project, its
// cells as three arrays. usage_facts FINAL filtered on its key columns, the same rows as
// usage_hourly (docs/data-model.md), which 18.16 would deduplicate whole before filtering.
func storedHours(orgID, lo, hi string, from, to time.Time) schema.Query {
	return schema.Query{Name: "soak.stored_hours", Kind: schema.KindSelect, SQL: `
SELECT project_id, groupArray(metric), groupArray(hour), groupArray(value)
FROM {db}.usage_facts FINAL
WHERE org_id = ? AND project_id >= ? AND project_id <= ? AND hour >= ? AND hour < ? AND value != 0
GROUP BY project_id`, Args: []any{orgID, lo, hi, schema.UTC(from), schema.UTC(to)}}
}

// checkWakes checks the simulator counted no request that would wake an idle compute.
func (w *world) checkWakes() check {
	st := w.sim.Stats()
	c := check{name: "the simulator's wake counter is 0", compared: st.ConsumptionRequests,
		detail: fmt.Sprintf("%d consumption calls, %d injected faults, %d rate-limited", st.ConsumptionRequests, st.Faults, st.RateLimited)}
	if st.Wakes != 0 {
		c.fail("%d requests would have woken an idle compute", st.Wakes)
	}
	return c
}

// checkMutations checks no Neon mutation was applied twice. A project's changes fall into
// epochs, each begun by a change of the project itself (its quota or default settings, say a
// suspension or a restore); within an epoch no request (method, route, body) may succeed twice,
// and no project change may repeat the one before it.
func (w *world) checkMutations() check {
	c := check{name: "no Neon mutation applied twice"}
	type epoch struct {
		project string // the project change that began it
		seen    map[string]time.Time
	}
	epochs := map[string]*epoch{}
	all := w.mutations.list()
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	for _, m := range all {
		if m.status/100 != 2 {
			continue
		}
		c.compared++
		id, own := projectOf(m.path)
		e := epochs[id]
		if e == nil {
			e = &epoch{seen: map[string]time.Time{}}
			epochs[id] = e
		}
		req := m.method + " " + m.path + " " + m.body
		if own {
			if req == e.project {
				c.fail("%s applied again at %s: the project already had that change", req, m.at.Format(time.RFC3339Nano))
			}
			e.project, e.seen = req, map[string]time.Time{}
			continue
		}
		if prev, ok := e.seen[req]; ok {
			c.fail("%s applied at %s and again at %s with no change of the project between", req, prev.Format(time.RFC3339Nano), m.at.Format(time.RFC3339Nano))
		}
		e.seen[req] = m.at
	}
	c.detail = fmt.Sprintf("%d mutations sent, %d applied", len(all), c.compared)
	return c
}

// projectOf returns the project a Neon route belongs to and whether the route is the
// project's own (/projects/{id}) rather than one of its endpoints'.
func projectOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/api/v2/projects/")
	if !ok {
		return path, true
	}
	id, sub, _ := strings.Cut(rest, "/")
	return id, sub == ""
}
