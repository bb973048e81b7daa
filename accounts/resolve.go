package accounts

import (
	"context"
	"maps"
	"slices"
	"sort"
	"time"
)

// Assignment is who pays for a project and which plan applies, at one instant.
type Assignment struct {
	ProjectID string
	// CustomerID is the Stripe customer; empty when nobody owns the project (unmapped).
	CustomerID string
	// Plan is the plan in force: the default plan when the project is unmapped or its
	// customer has no plan in force.
	Plan string
	// Default is set when Plan is the default plan for lack of a plan of the project's own.
	Default bool
	// Since is when the recorded state in force began; zero when nothing was ever recorded.
	Since time.Time
	// SubscriptionID is the subscription that set the plan, when known.
	SubscriptionID string
}

// Mapped reports whether a customer owns the project.
func (a Assignment) Mapped() bool { return a.CustomerID != "" }

// Timelines resolves the assignment of projects at any instant from their stored history,
// in memory: billing loads the history of a batch of projects once and asks for every hour.
type Timelines struct {
	defaultPlan string
	byProject   map[string][]Record
}

// NewTimelines indexes history (any order) by project.
func NewTimelines(history []Record, defaultPlan string) *Timelines {
	t := &Timelines{defaultPlan: defaultPlan, byProject: map[string][]Record{}}
	for _, c := range history {
		t.byProject[c.ProjectID] = append(t.byProject[c.ProjectID], c)
	}
	for _, cs := range t.byProject {
		sort.Slice(cs, func(i, j int) bool { return cs[i].ValidFrom.Before(cs[j].ValidFrom) })
	}
	return t
}

// LoadTimelines reads the history of projectIDs (nil: every project) up to to, in one query
// per thousand projects, for resolving any instant before to.
func LoadTimelines(ctx context.Context, store Store, projectIDs []string, to time.Time, defaultPlan string) (*Timelines, error) {
	h, err := store.History(ctx, projectIDs, to)
	if err != nil {
		return nil, err
	}
	return NewTimelines(h, defaultPlan), nil
}

// At returns the project's assignment at instant at: its latest change with valid_from <= at.
// For an hour bucket [H, H+1h) ask At(H): the state at the start of the hour owns the hour.
func (t *Timelines) At(projectID string, at time.Time) Assignment {
	cs := t.byProject[projectID]
	i := sort.Search(len(cs), func(i int) bool { return cs[i].ValidFrom.After(at) })
	if i == 0 {
		return Assignment{ProjectID: projectID, Plan: t.defaultPlan, Default: true}
	}
	return assignmentOf(cs[i-1], t.defaultPlan)
}

// Hours returns the assignment of every hour bucket in [from, to), from truncated to the hour.
func (t *Timelines) Hours(projectID string, from, to time.Time) []Assignment {
	var out []Assignment
	for h := from.UTC().Truncate(time.Hour); h.Before(to); h = h.Add(time.Hour) {
		out = append(out, t.At(projectID, h))
	}
	return out
}

// ChangesWithin reports whether the project's assignment may differ between hours of [from,
// to): a recorded change falls strictly inside the range.
func (t *Timelines) ChangesWithin(projectID string, from, to time.Time) bool {
	for _, c := range t.byProject[projectID] {
		if c.ValidFrom.After(from) && c.ValidFrom.Before(to) {
			return true
		}
	}
	return false
}

// Projects returns the projects with recorded history, sorted.
func (t *Timelines) Projects() []string { return slices.Sorted(maps.Keys(t.byProject)) }

// History returns a project's recorded changes, oldest first.
func (t *Timelines) History(projectID string) []Record {
	return append([]Record(nil), t.byProject[projectID]...)
}

func assignmentOf(c Record, defaultPlan string) Assignment {
	a := Assignment{ProjectID: c.ProjectID, CustomerID: c.CustomerID, Plan: c.Plan, Since: c.ValidFrom, SubscriptionID: c.SubscriptionID}
	if a.Plan == "" {
		a.Plan, a.Default = defaultPlan, true
	}
	return a
}

// AssignmentsAt returns the assignment at instant at of every project with recorded history
// plus every project in extra (projects known from usage), in one query: the "plan in force at
// hour H" question. Sorted by project.
func AssignmentsAt(ctx context.Context, store Store, at time.Time, extra []string, defaultPlan string) ([]Assignment, error) {
	m, err := store.At(ctx, nil, at)
	if err != nil {
		return nil, err
	}
	out := make([]Assignment, 0, len(m)+len(extra))
	for _, c := range m {
		out = append(out, assignmentOf(c, defaultPlan))
	}
	for _, p := range extra {
		if _, ok := m[p]; !ok {
			out = append(out, Assignment{ProjectID: p, Plan: defaultPlan, Default: true})
			m[p] = Record{}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProjectID < out[j].ProjectID })
	return out, nil
}

// Unmapped returns, of the projects with usage in [from, to), those nobody owns at instant
// at, sorted: they are billed to no one and get the default plan.
func Unmapped(ctx context.Context, store Store, from, to, at time.Time) ([]string, error) {
	used, err := store.UsageProjects(ctx, from, to)
	if err != nil {
		return nil, err
	}
	// One read of every project's state beats a thousand-id IN list per thousand projects.
	states, err := store.At(ctx, nil, at)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range used {
		if states[p].CustomerID == "" {
			out = append(out, p)
		}
	}
	return out, nil
}
