package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neonmeter/neonmeter/schema"
)

// verifyChunk is how many projects one verification query reads: ClickHouse groups their
// stored hours into one row per project, so neither side holds more than a chunk.
const verifyChunk = 5000

// maxExamples is how many differences the report quotes.
const maxExamples = 8

// verifyResult compares the stored hours of the day with the simulator's ground truth. Zero
// values may be absent (Neon omits them), so only non-zero ones count as missing or extra.
type verifyResult struct {
	projects   int
	values     int64 // non-zero ground-truth values of the day
	matched    int64
	mismatched int64 // stored with another value
	missing    int64 // non-zero in the truth, not stored (or stored as 0)
	extra      int64 // stored non-zero where the truth is 0 or has no such cell
	examples   []string
}

func (v *verifyResult) ok() bool {
	return v.values > 0 && v.mismatched == 0 && v.missing == 0 && v.extra == 0 && v.matched == v.values
}

func (v *verifyResult) note(format string, a ...any) {
	if len(v.examples) < maxExamples {
		v.examples = append(v.examples, fmt.Sprintf(format, a...))
	}
}

// storedProject is one project's stored hours of the day, as ClickHouse groups them: metric
// (1-based index into the org's sorted metric names, 0 for a name not among them), hour (unix
// seconds) and value, in no particular order.
type storedProject struct {
	id      string
	metrics []uint64
	hours   []uint32
	values  []uint64
}

// verifyWorkers is how many chunks are verified at once: one's query runs in ClickHouse while
// another's rows are compared.
const verifyWorkers = 2

// chunkJob is one verification query: an org's projects ids[...] whose ids lie in [lo, hi) (no
// upper bound when last).
type chunkJob struct {
	org        string
	names, ids []string
	lo, hi     string
	last       bool
}

// verifyDay reads every collected org's stored hours of the day, chunk by chunk of projects in
// id order, one row per project, and compares each (metric, hour) with the simulator's values.
func (b *benchRun) verifyDay(ctx context.Context) (verifyResult, error) {
	var v verifyResult
	var jobs []chunkJob
	for _, o := range b.orgs {
		ids := b.sorted[o.id]
		v.projects += len(ids)
		if len(ids) == 0 {
			continue
		}
		names := b.sim.RouteMetrics(ids[0])
		for k := 0; k < len(ids); k += b.chunk {
			j := chunkJob{org: o.id, names: names, ids: ids[k:min(k+b.chunk, len(ids))], last: k+b.chunk >= len(ids)}
			if k > 0 { // the first chunk also takes rows of ids below the org's first project
				j.lo = j.ids[0]
			}
			if !j.last {
				j.hi = ids[k+b.chunk]
			}
			jobs = append(jobs, j)
		}
	}
	parts, err := b.verifyChunks(ctx, jobs)
	if err != nil {
		return v, err
	}
	for _, p := range parts {
		v.add(&p)
	}
	var others uint64
	err = otherOrgsRows(orgIDs(b.orgs), b.res.dayStart, b.res.dayEnd).Each(ctx, b.conn, b.o.Database, func(r schema.Row) error {
		return r.Scan(&others)
	})
	if others > 0 {
		v.extra += int64(others)
		v.note("%d non-zero rows of organizations that are not collected", others)
	}
	return v, err
}

// verifyChunks runs the jobs on verifyWorkers goroutines; results are in the jobs' order.
func (b *benchRun) verifyChunks(ctx context.Context, jobs []chunkJob) ([]verifyResult, error) {
	parts := make([]verifyResult, len(jobs))
	errs := make([]error, verifyWorkers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range verifyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(jobs) && errs[w] == nil; i = int(next.Add(1) - 1) {
				j := &jobs[i]
				q := storedDays(j.org, j.names, j.lo, j.hi, j.last, b.res.dayStart, b.res.dayEnd)
				errs[w] = b.mergeChunk(ctx, q, j.ids, j.names, &parts[i])
			}
		}()
	}
	wg.Wait()
	return parts, errors.Join(errs...)
}

// add merges another chunk's counts into v.
func (v *verifyResult) add(p *verifyResult) {
	v.values += p.values
	v.matched += p.matched
	v.mismatched += p.mismatched
	v.missing += p.missing
	v.extra += p.extra
	for _, e := range p.examples {
		v.note("%s", e)
	}
}

// mergeChunk merges one query's projects, sorted by id, with the sorted ids of chunk.
func (b *benchRun) mergeChunk(ctx context.Context, q schema.Query, chunk, names []string, v *verifyResult) error {
	hours := int(b.res.dayEnd.Sub(b.res.dayStart) / time.Hour)
	truth := make([]int64, len(names)*hours)
	i := 0
	var sp storedProject
	err := q.Each(ctx, b.conn, b.o.Database, func(r schema.Row) error {
		if err := r.Scan(&sp.id, &sp.metrics, &sp.hours, &sp.values); err != nil {
			return err
		}
		for ; i < len(chunk) && chunk[i] < sp.id; i++ {
			b.compareProject(chunk[i], names, truth, nil, v)
		}
		if i < len(chunk) && chunk[i] == sp.id {
			b.compareProject(chunk[i], names, truth, &sp, v)
			i++
			return nil
		}
		for k, x := range sp.values {
			if x != 0 {
				v.extra++
				v.note("extra: %s %s stored %d, no such project", sp.id, time.Unix(int64(sp.hours[k]), 0).UTC().Format(time.RFC3339), x)
			}
		}
		return nil
	})
	for ; i < len(chunk); i++ {
		b.compareProject(chunk[i], names, truth, nil, v)
	}
	return err
}

// compareProject compares a project's truth with what is stored for it (nil: nothing); truth
// is scratch space of len(names) × hours.
func (b *benchRun) compareProject(id string, names []string, truth []int64, sp *storedProject, v *verifyResult) {
	hours := len(truth) / max(len(names), 1)
	h := 0
	b.sim.HourlyTruth(id, b.res.dayStart, b.res.dayEnd, func(_ time.Time, values []int64) {
		for m, x := range values {
			truth[m*hours+h] = x
		}
		h++
	})
	at := func(h int) time.Time { return b.res.dayStart.Add(time.Duration(h) * time.Hour) }
	seen := make([]bool, len(truth))
	if sp != nil {
		for k, x := range sp.values {
			m, h := int(sp.metrics[k])-1, (int64(sp.hours[k])-b.res.dayStart.Unix())/3600
			if m < 0 || h < 0 || int(h) >= hours {
				if x != 0 {
					v.extra++
					v.note("extra: %s hour %d, a metric not on its route, stored %d", id, sp.hours[k], x)
				}
				continue
			}
			c := m*hours + int(h)
			seen[c] = true
			v.compare(id, names[m], at(int(h)), truth[c], int64(x))
		}
	}
	for c, t := range truth {
		if !seen[c] {
			v.compare(id, names[c/hours], at(c%hours), t, 0)
		}
	}
}

// compare counts one cell: its truth and what is stored (0 when nothing is).
func (v *verifyResult) compare(project, metric string, hour time.Time, truth, stored int64) {
	switch {
	case truth == stored:
		if truth != 0 {
			v.values++
			v.matched++
		}
	case truth == 0:
		v.extra++
		v.note("extra: %s %s %s stored %d, truth 0", project, metric, hour.Format(time.RFC3339), stored)
	case stored == 0:
		v.values++
		v.missing++
		v.note("missing: %s %s %s truth %d, not stored", project, metric, hour.Format(time.RFC3339), truth)
	default:
		v.values++
		v.mismatched++
		v.note("mismatch: %s %s %s stored %d, truth %d", project, metric, hour.Format(time.RFC3339), stored, truth)
	}
}

func orgIDs(orgs []org) []string {
	out := make([]string, len(orgs))
	for i, o := range orgs {
		out[i] = o.id
	}
	return out
}

// storedDays reads an org's stored hours of [from, to) for project ids in [lo, hi) (no upper
// bound when last): one row per project, sorted by id, its cells as three arrays (metric index
// into names, 1-based; hour; value). usage_facts FINAL with filters on its key columns
// (docs/data-model.md): the view would deduplicate the whole table first on 18.16.
func storedDays(orgID string, names []string, lo, hi string, last bool, from, to time.Time) schema.Query {
	return schema.Query{Name: "fleetbench.stored_days", Kind: schema.KindSelect, SQL: `
SELECT project_id, groupArray(indexOf(?, metric)) AS metrics, groupArray(toUInt32(hour)) AS hours, groupArray(value) AS values
FROM {db}.usage_facts FINAL
WHERE org_id = ? AND project_id >= ? AND (? = 1 OR project_id < ?) AND hour >= ? AND hour < ?
GROUP BY project_id
ORDER BY project_id`, Args: []any{names, orgID, lo, boolInt(last), hi, from, to}}
}

// otherOrgsRows counts the day's non-zero rows, of any version, of organizations outside orgs
// (without FINAL: any such row is wrong, and this scans the whole day).
func otherOrgsRows(orgs []string, from, to time.Time) schema.Query {
	return schema.Query{Name: "fleetbench.other_orgs", Kind: schema.KindSelect, SQL: `
SELECT count()
FROM {db}.usage_facts
WHERE NOT has(?, org_id) AND hour >= ? AND hour < ? AND value != 0`, Args: []any{orgs, from, to}}
}

func boolInt(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
