package collector

import (
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// Grid holds one page of consumption: what Neon reported and what ClickHouse holds, for every
// (project, metric, bucket) of the page's projects in the window, in a dense array. A page has at
// most 100 projects, a few metrics and at most 168 hourly buckets, so the grid is small, and
// comparing two arrays is far cheaper than comparing maps keyed by strings.
type Grid struct {
	OrgID    string
	Projects []string // page order
	Metrics  []string
	// Buckets of the window, oldest first; hourly, daily or monthly.
	Buckets []time.Time
	// Values counts the values Neon reported.
	Values int

	cells   []cell
	periods []neon.Period // every period of the page; cells point into it
	// projectPeriods[p] are the indexes in periods of project p's periods.
	projectPeriods [][]int32
	bucketIndex    map[int64]int
	metricIndex    map[string]int
	projectIndex   map[string]int
}

type cell struct {
	observed, stored, version uint64
	period                    int32 // index into Grid.periods of the observed value
	flags                     uint8
}

const (
	flagObserved uint8 = 1 << iota
	flagStored
)

// Buckets returns the bucket starts of [from, to) at a granularity: hours, UTC days or UTC
// calendar months.
func Buckets(g Granularity, from, to time.Time) []time.Time {
	var out []time.Time
	for t := from.UTC(); t.Before(to); {
		out = append(out, t)
		switch g {
		case GranularityMonthly:
			t = t.AddDate(0, 1, 0)
		case GranularityDaily:
			t = t.Add(24 * time.Hour)
		default:
			t = t.Add(time.Hour)
		}
	}
	return out
}

// NewGrid makes an empty grid for a page's projects, the metrics requested and the window's
// buckets.
func NewGrid(orgID string, projects, metrics []string, buckets []time.Time) *Grid {
	g := &Grid{
		OrgID: orgID, Projects: projects, Metrics: metrics, Buckets: buckets,
		cells:          make([]cell, len(projects)*len(metrics)*len(buckets)),
		projectPeriods: make([][]int32, len(projects)),
		bucketIndex:    make(map[int64]int, len(buckets)),
		metricIndex:    make(map[string]int, len(metrics)),
		projectIndex:   make(map[string]int, len(projects)),
	}
	for i, b := range buckets {
		g.bucketIndex[b.Unix()] = i
	}
	for i, m := range metrics {
		g.metricIndex[m] = i
	}
	for i, p := range projects {
		g.projectIndex[p] = i
	}
	return g
}

func (g *Grid) at(p, m, b int) *cell {
	return &g.cells[(p*len(g.Metrics)+m)*len(g.Buckets)+b]
}

// FlattenPage builds the grid of one consumption page. Periods are flattened: a bucket belongs
// to whichever period reported it. A bucket outside the window, a metric not requested, a
// negative value or the same value reported twice is an error: Neon answered something else
// than what was asked.
func FlattenPage(orgID string, page *neon.ConsumptionPage, metrics []string, buckets []time.Time) (*Grid, error) {
	ids := make([]string, len(page.Projects))
	for i, p := range page.Projects {
		ids[i] = p.ProjectID
	}
	g := NewGrid(orgID, ids, metrics, buckets)
	if len(g.projectIndex) != len(ids) {
		return nil, fmt.Errorf("a project appears twice in one page")
	}
	for pi, p := range page.Projects {
		for _, per := range p.Periods {
			g.periods = append(g.periods, per)
			perIdx := int32(len(g.periods) - 1)
			g.projectPeriods[pi] = append(g.projectPeriods[pi], perIdx)
			for _, tf := range per.Consumption {
				bi, ok := g.bucketIndex[tf.Start.Unix()]
				if !ok {
					return nil, fmt.Errorf("project %s: bucket %s is not a bucket of the requested window [%s, %s)",
						p.ProjectID, tf.Start.UTC().Format(time.RFC3339), buckets[0].Format(time.RFC3339), g.end().Format(time.RFC3339))
				}
				for _, mv := range tf.Metrics {
					mi, ok := g.metricIndex[mv.Name]
					if !ok {
						return nil, fmt.Errorf("project %s bucket %s: metric %q was not requested", p.ProjectID, tf.Start.UTC().Format(time.RFC3339), mv.Name)
					}
					if mv.Value < 0 {
						// The client rejects these; guard anyway, since a negative would wrap in UInt64.
						return nil, fmt.Errorf("project %s metric %s bucket %s: negative value %d", p.ProjectID, mv.Name, tf.Start.UTC().Format(time.RFC3339), mv.Value)
					}
					c := g.at(pi, mi, bi)
					if c.flags&flagObserved != 0 {
						return nil, fmt.Errorf("project %s metric %s bucket %s: reported twice", p.ProjectID, mv.Name, tf.Start.UTC().Format(time.RFC3339))
					}
					c.observed, c.period, c.flags = uint64(mv.Value), perIdx, c.flags|flagObserved
					g.Values++
				}
			}
		}
	}
	return g, nil
}

func (g *Grid) end() time.Time {
	if len(g.Buckets) == 0 {
		return time.Time{}
	}
	last := g.Buckets[len(g.Buckets)-1]
	if len(g.Buckets) > 1 {
		return last.Add(last.Sub(g.Buckets[len(g.Buckets)-2]))
	}
	return last
}

// Observe records a value Neon reported, for tests and callers that build grids by hand.
func (g *Grid) Observe(projectID, metric string, bucket time.Time, value uint64, period neon.Period) error {
	p, m, b, err := g.index(projectID, metric, bucket)
	if err != nil {
		return err
	}
	g.periods = append(g.periods, period)
	g.projectPeriods[p] = append(g.projectPeriods[p], int32(len(g.periods)-1))
	c := g.at(p, m, b)
	c.observed, c.period, c.flags = value, int32(len(g.periods)-1), c.flags|flagObserved
	g.Values++
	return nil
}

// Store records a stored version of a fact by positions (project and metric in the grid's
// lists, bucket start in Unix seconds); the highest version is kept. Facts outside the grid
// are ignored.
func (g *Grid) Store(project, metric int, bucketUnix int64, value, version uint64) {
	b, ok := g.bucketIndex[bucketUnix]
	if !ok || project < 0 || project >= len(g.Projects) || metric < 0 || metric >= len(g.Metrics) {
		return
	}
	c := g.at(project, metric, b)
	if c.flags&flagStored == 0 || version > c.version {
		c.stored, c.version, c.flags = value, version, c.flags|flagStored
	}
}

// StoreByName is Store with a project id and metric name; unknown ones are ignored.
func (g *Grid) StoreByName(projectID, metric string, bucket time.Time, value, version uint64) {
	p, ok := g.projectIndex[projectID]
	m, ok2 := g.metricIndex[metric]
	if ok && ok2 {
		g.Store(p, m, bucket.Unix(), value, version)
	}
}

func (g *Grid) index(projectID, metric string, bucket time.Time) (p, m, b int, err error) {
	var ok bool
	if p, ok = g.projectIndex[projectID]; !ok {
		return 0, 0, 0, fmt.Errorf("project %s is not in the grid", projectID)
	}
	if m, ok = g.metricIndex[metric]; !ok {
		return 0, 0, 0, fmt.Errorf("metric %s is not in the grid", metric)
	}
	if b, ok = g.bucketIndex[bucket.Unix()]; !ok {
		return 0, 0, 0, fmt.Errorf("bucket %s is not in the grid", bucket.UTC().Format(time.RFC3339))
	}
	return p, m, b, nil
}

// periodOf returns the period of project p containing bucket start t (a bucket belongs to the
// period its start falls in), for values Neon stopped reporting.
func (g *Grid) periodOf(p int, t time.Time) (id, plan string) {
	for _, i := range g.projectPeriods[p] {
		per := g.periods[i]
		if !t.Before(per.Start) && (per.End.IsZero() || t.Before(per.End)) {
			return per.ID, per.Plan
		}
	}
	return "", ""
}

// DiffOptions are the rules and stamps of a diff.
type DiffOptions struct {
	// ProvisionalFrom is the first bucket Neon may still revise: before it, a metric missing
	// from a complete page means 0; from it on, missing means "not yet known" and nothing is
	// written.
	ProvisionalFrom time.Time
	// Version orders this run's rows after every earlier one; per key it is raised above the
	// stored version, so a replacement always wins even under clock skew.
	Version     uint64
	CollectedAt time.Time
	RunID       string
}

// DiffResult is what must be written: facts that are new or changed, and the revision log of
// every change to a stored value.
type DiffResult struct {
	Facts     []Fact // Hour is the bucket start
	Revisions []Revision
	Unchanged int
}

// Diff compares what Neon reported with what is stored and returns only what changed, so a
// re-run of the same window writes nothing and rows written scale with change, not with
// fleet × window:
//   - a value not stored (and non-zero) is new;
//   - a value stored with another value is a revision: a new row with a higher version, logged;
//   - a stored non-zero value Neon no longer reports is revised to 0, but only before the
//     provisional window (Neon omits zero metrics, yet refreshes recent buckets for a while).
func Diff(g *Grid, o DiffOptions) DiffResult {
	var out DiffResult
	provisional := o.ProvisionalFrom.Unix()
	i := 0
	for p, project := range g.Projects {
		for _, metric := range g.Metrics {
			for _, bucket := range g.Buckets {
				c := &g.cells[i]
				i++
				observed, stored := c.flags&flagObserved != 0, c.flags&flagStored != 0
				var value uint64
				var periodID, plan string
				switch {
				case observed && stored && c.observed == c.stored:
					out.Unchanged++
					continue
				case observed && !stored && c.observed == 0:
					continue // nothing stored is already a zero
				case observed:
					per := g.periods[c.period]
					value, periodID, plan = c.observed, per.ID, per.Plan
				case stored && bucket.Unix() < provisional:
					if c.stored == 0 {
						out.Unchanged++
						continue
					}
					periodID, plan = g.periodOf(p, bucket)
				default:
					continue // neither, or stored but not yet known
				}
				version := o.Version
				if stored && c.version >= version {
					version = c.version + 1
				}
				out.Facts = append(out.Facts, Fact{
					OrgID: g.OrgID, ProjectID: project, Metric: metric, Hour: bucket, Value: value,
					PeriodID: periodID, PeriodPlan: plan, CollectedAt: o.CollectedAt, Version: version,
				})
				if stored {
					out.Revisions = append(out.Revisions, Revision{
						OrgID: g.OrgID, ProjectID: project, Metric: metric, Hour: bucket,
						OldValue: c.stored, NewValue: value, OldVersion: c.version, NewVersion: version,
						DetectedAt: o.CollectedAt, RunID: o.RunID,
					})
				}
			}
		}
	}
	return out
}
