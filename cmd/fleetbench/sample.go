package main

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// sample is what the benchmark saw at one simulated instant (an hour boundary, or the end).
type sample struct {
	at    time.Time // simulated
	stats sim.Stats
	// active: the projects whose compute ran in the hour before at, by the simulator's truth,
	// and how far behind at their collection is.
	active freshness
	// tiers: budgeted mode, collection_progress by the tier the collector gave each project;
	// fullsweep, the orgs' hourly watermarks under the name "all".
	tiers   map[string]tierStat
	covered uint64 // projects with any progress
	err     error  // reading ClickHouse failed
}

// freshness is the worst collection age in a set of projects.
type freshness struct {
	projects int
	worst    time.Duration // -1 when none of them was ever collected, or the set is empty
	never    int           // projects of the set never collected
}

// tierStat is a tier's size, its oldest complete_through and the oldest last collection of
// its projects.
type tierStat struct {
	projects uint64
	oldest   time.Time
	updated  time.Time
}

// codeUnknownTable is ClickHouse's UNKNOWN_TABLE.
const codeUnknownTable = 60

// sampleHours takes a sample at every simulated hour boundary after the day's start, until
// ctx ends.
func (b *benchRun) sampleHours(ctx context.Context) {
	for h := b.res.dayStart.Add(time.Hour); ; h = h.Add(time.Hour) {
		if !sleepUntil(ctx, b.clock.RealAt(h)) {
			return
		}
		b.addSample(b.takeSample(ctx, h))
	}
}

func (b *benchRun) addSample(s sample) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.samples = append(b.samples, s)
}

// takeSample reads the simulator's counters at once, then the collector's progress.
func (b *benchRun) takeSample(ctx context.Context, at time.Time) sample {
	s := sample{at: at, stats: b.sim.Stats(), active: freshness{worst: -1}}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	ran := b.ranIn(at.Truncate(time.Hour).Add(-time.Hour))
	if b.o.Mode == modeFullsweep {
		marks, err := b.watermarks(ctx)
		s.tiers, s.covered, s.err = fullsweepTiers(b.orgs, marks), 0, err
		for _, o := range b.orgs {
			s.active.add(at, marks[o.id], len(ran[o.id]))
			if _, ok := marks[o.id]; ok {
				s.covered += uint64(len(o.projects))
			}
		}
		return s
	}
	s.tiers, s.err = b.progress(ctx)
	for _, t := range s.tiers {
		s.covered += t.projects
	}
	for _, o := range b.orgs {
		if err := b.activeProgress(ctx, o.id, ran[o.id], at, &s.active); err != nil && s.err == nil {
			s.err = err
		}
	}
	return s
}

// ranIn lists, per org, the sorted ids of the projects whose compute ran in the hour.
func (b *benchRun) ranIn(hour time.Time) map[string][]string {
	out := map[string][]string{}
	for _, o := range b.orgs {
		var ids []string
		for _, id := range b.sorted[o.id] {
			if b.sim.Ran(id, hour) {
				ids = append(ids, id)
			}
		}
		out[o.id] = ids
	}
	return out
}

// add counts n projects complete through t (zero: never collected) at the instant at.
func (f *freshness) add(at, t time.Time, n int) {
	f.projects += n
	switch {
	case n == 0:
	case t.IsZero():
		f.never += n
	default:
		f.worst = max(f.worst, at.Sub(t))
	}
}

// activeProgress merges an org's progress rows, sorted by project, with its active projects.
func (b *benchRun) activeProgress(ctx context.Context, orgID string, active []string, at time.Time, f *freshness) error {
	if len(active) == 0 {
		return nil
	}
	i := 0
	var id string
	var through time.Time
	err := orgProgress(orgID).Each(ctx, b.conn, b.o.Database, func(r schema.Row) error {
		if err := r.Scan(&id, &through); err != nil {
			return err
		}
		for ; i < len(active) && active[i] < id; i++ {
			f.add(at, time.Time{}, 1)
		}
		if i < len(active) && active[i] == id {
			f.add(at, through, 1)
			i++
		}
		return nil
	})
	f.add(at, time.Time{}, len(active)-i)
	if unknownTable(err) {
		return nil
	}
	return err
}

func unknownTable(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == codeUnknownTable
}

// progress reads collection_progress by tier; an absent table is no progress yet, not an error.
func (b *benchRun) progress(ctx context.Context) (map[string]tierStat, error) {
	out := map[string]tierStat{}
	err := progressByTier().Each(ctx, b.conn, b.o.Database, func(r schema.Row) error {
		var tier string
		var t tierStat
		if err := r.Scan(&tier, &t.projects, &t.oldest, &t.updated); err != nil {
			return err
		}
		out[tier] = t
		return nil
	})
	if unknownTable(err) {
		return nil, nil
	}
	return out, err
}

// watermarks reads the hourly watermark of every org that has one.
func (b *benchRun) watermarks(ctx context.Context) (map[string]time.Time, error) {
	marks := map[string]time.Time{}
	err := hourlyWatermarks().Each(ctx, b.conn, b.o.Database, func(r schema.Row) error {
		var id string
		var t time.Time
		if err := r.Scan(&id, &t); err != nil {
			return err
		}
		marks[id] = t
		return nil
	})
	return marks, err
}

// fullsweepTiers is the one tier of a full sweep, "all": every project is as fresh as its
// org's watermark; empty until every org has one.
func fullsweepTiers(orgs []org, marks map[string]time.Time) map[string]tierStat {
	var all tierStat
	for _, o := range orgs {
		t, ok := marks[o.id]
		if !ok {
			return map[string]tierStat{}
		}
		if all.oldest.IsZero() || t.Before(all.oldest) {
			all.oldest = t
		}
		all.projects += uint64(len(o.projects))
	}
	return map[string]tierStat{"all": all}
}

// sortedIDs is every collected org's project ids in ClickHouse's String order (bytes).
func sortedIDs(orgs []org) map[string][]string {
	out := map[string][]string{}
	for _, o := range orgs {
		ids := slices.Clone(o.projects)
		slices.Sort(ids)
		out[o.id] = ids
	}
	return out
}

// progressByTier is the size and oldest complete_through of each tier of the budgeted
// collector's per-project progress (the tier it collected each project for).
func progressByTier() schema.Query {
	return schema.Query{Name: "fleetbench.progress_by_tier", Kind: schema.KindSelect, SQL: `
SELECT toString(tier) AS tier, count() AS projects, min(complete_through) AS oldest, min(updated_at) AS updated
FROM {db}.collection_progress FINAL
GROUP BY tier`}
}

// orgProgress is every project's complete_through of an org, sorted by project id.
func orgProgress(orgID string) schema.Query {
	return schema.Query{Name: "fleetbench.org_progress", Kind: schema.KindSelect, SQL: `
SELECT project_id, complete_through
FROM {db}.collection_progress FINAL
WHERE org_id = ?
ORDER BY project_id`, Args: []any{orgID}}
}

// hourlyWatermarks is the hourly watermark of every org.
func hourlyWatermarks() schema.Query {
	return schema.Query{Name: "fleetbench.hourly_watermarks", Kind: schema.KindSelect, SQL: `
SELECT org_id, covered_until
FROM {db}.collection_watermarks FINAL
WHERE granularity = 'hourly'`}
}
