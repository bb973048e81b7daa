package collector

import (
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// Observation is one value Neon reported: a metric of a project for one hour.
type Observation struct {
	ProjectID  string
	Metric     string
	Hour       time.Time
	Value      uint64
	PeriodID   string
	PeriodPlan string
}

// Periods tells which Neon billing period of a project covers an hour, as a page reported them.
type Periods map[string][]neon.Period

// Of returns the id and plan of the project's period containing hour (a bucket belongs to the
// period its start falls in), or empty strings.
func (ps Periods) Of(projectID string, hour time.Time) (id, plan string) {
	for _, p := range ps[projectID] {
		if !hour.Before(p.Start) && (p.End.IsZero() || hour.Before(p.End)) {
			return p.ID, p.Plan
		}
	}
	return "", ""
}

// Flatten turns one consumption page into observations, one per (project, metric, hour).
// Periods are flattened: a bucket belongs to whichever period reported it. It returns the ids
// of the page's projects too, since a project with no data in the window still has its stored
// values checked, and the page's periods. Hours outside [from, to) are an error: Neon answered
// another window.
func Flatten(page *neon.ConsumptionPage, from, to time.Time) ([]Observation, []string, Periods, error) {
	var obs []Observation
	ids := make([]string, 0, len(page.Projects))
	periods := make(Periods, len(page.Projects))
	for _, p := range page.Projects {
		ids = append(ids, p.ProjectID)
		periods[p.ProjectID] = p.Periods
		for _, per := range p.Periods {
			for _, tf := range per.Consumption {
				h := tf.Start.UTC()
				if h.Before(from) || !h.Before(to) {
					return nil, nil, nil, fmt.Errorf("project %s: timeframe %s outside the requested window [%s, %s)",
						p.ProjectID, h.Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339))
				}
				for _, m := range tf.Metrics {
					if m.Value < 0 {
						// The client rejects these; guard anyway, since a negative would wrap in UInt64.
						return nil, nil, nil, fmt.Errorf("project %s metric %s hour %s: negative value %d",
							p.ProjectID, m.Name, h.Format(time.RFC3339), m.Value)
					}
					obs = append(obs, Observation{
						ProjectID: p.ProjectID, Metric: m.Name, Hour: h, Value: uint64(m.Value),
						PeriodID: per.ID, PeriodPlan: per.Plan,
					})
				}
			}
		}
	}
	return obs, ids, periods, nil
}

// Key identifies an hourly fact within one org. The hour is kept as Unix seconds: time.Time
// values of the same instant compare unequal as map keys when their locations differ.
type Key struct {
	ProjectID string
	Metric    string
	Hour      int64
}

// KeyOf builds the key of a (project, metric, hour).
func KeyOf(projectID, metric string, hour time.Time) Key {
	return Key{ProjectID: projectID, Metric: metric, Hour: hour.Unix()}
}

// Time returns the key's hour in UTC.
func (k Key) Time() time.Time { return time.Unix(k.Hour, 0).UTC() }

// DiffInput is everything Diff decides from: one page's observations and what ClickHouse holds
// for the same projects and window.
type DiffInput struct {
	OrgID    string
	Observed []Observation
	// Projects are the page's project ids; only their stored values are compared.
	Projects []string
	Stored   map[Key]schema.StoredFact
	// Periods name the billing period of a value Neon stopped reporting (written as 0).
	Periods Periods
	// ProvisionalFrom is the first hour Neon may still revise: before it, a metric missing from
	// a complete page means 0; from it on, missing means "not yet known" and nothing is written.
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
	Facts     []schema.Fact
	Revisions []schema.Revision
	Unchanged int
}

// Diff compares observed values with stored ones and returns only what changed, so a re-run of
// the same window writes nothing and rows written scale with change, not with fleet × window.
func Diff(in DiffInput) DiffResult {
	var out DiffResult
	seen := make(map[Key]struct{}, len(in.Observed))
	for _, o := range in.Observed {
		k := KeyOf(o.ProjectID, o.Metric, o.Hour)
		seen[k] = struct{}{}
		s, stored := in.Stored[k]
		switch {
		case stored && s.Value == o.Value:
			out.Unchanged++
		case !stored && o.Value == 0:
			// Nothing stored is already a zero.
		default:
			out.add(in, k, o.Value, o.PeriodID, o.PeriodPlan, s, stored)
		}
	}
	inPage := make(map[string]struct{}, len(in.Projects))
	for _, id := range in.Projects {
		inPage[id] = struct{}{}
	}
	for k, s := range in.Stored {
		if _, ok := seen[k]; ok {
			continue
		}
		if _, ok := inPage[k.ProjectID]; !ok || k.Hour >= in.ProvisionalFrom.Unix() {
			continue
		}
		// Neon omits zero metrics: outside the provisional window a value it no longer reports
		// was revised to 0.
		if s.Value == 0 {
			out.Unchanged++
			continue
		}
		id, plan := in.Periods.Of(k.ProjectID, k.Time())
		out.add(in, k, 0, id, plan, s, true)
	}
	return out
}

func (r *DiffResult) add(in DiffInput, k Key, value uint64, periodID, plan string, old schema.StoredFact, stored bool) {
	version := in.Version
	if stored && old.Version >= version {
		version = old.Version + 1
	}
	r.Facts = append(r.Facts, schema.Fact{
		OrgID: in.OrgID, ProjectID: k.ProjectID, Metric: k.Metric, Hour: k.Time(), Value: value,
		PeriodID: periodID, PeriodPlan: plan, CollectedAt: in.CollectedAt, Version: version,
	})
	if stored {
		r.Revisions = append(r.Revisions, schema.Revision{
			OrgID: in.OrgID, ProjectID: k.ProjectID, Metric: k.Metric, Hour: k.Time(),
			OldValue: old.Value, NewValue: value, OldVersion: old.Version, NewVersion: version,
			DetectedAt: in.CollectedAt, RunID: in.RunID,
		})
	}
}
