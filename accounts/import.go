package accounts

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
)

// PlanImport returns the rows that change something, given the stored history of their
// projects. A row is skipped when the stored history already has the same state at the same
// instant, or when the state in force just before it is already the same (records changes
// only). A row at the instant of a stored change with another state replaces it. It is pure.
func PlanImport(stored []Record, rows []Row) []ProjectChange {
	type point struct {
		at    time.Time
		state State
	}
	timeline := map[string][]point{}
	for _, c := range stored {
		timeline[c.ProjectID] = append(timeline[c.ProjectID], point{c.ValidFrom.UTC(), State{CustomerID: c.CustomerID, Plan: c.Plan}})
	}
	sorted := append([]Row(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].ProjectID != sorted[j].ProjectID {
			return sorted[i].ProjectID < sorted[j].ProjectID
		}
		return sorted[i].ValidFrom.Before(sorted[j].ValidFrom)
	})
	var out []ProjectChange
	for _, r := range sorted {
		st := State{CustomerID: r.CustomerID, Plan: r.Plan}
		pts := timeline[r.ProjectID]
		var prev State
		exact, found := State{}, false
		var latest time.Time
		for _, p := range pts {
			switch {
			case p.at.Equal(r.ValidFrom):
				exact, found = p.state, true
			case p.at.Before(r.ValidFrom) && !p.at.Before(latest):
				prev, latest = p.state, p.at
			}
		}
		if (found && exact.Same(st)) || (!found && prev.Same(st)) {
			continue
		}
		out = append(out, ProjectChange{ProjectID: r.ProjectID, Change: Change{At: r.ValidFrom, State: st, Basis: BasisImported}})
		if found {
			for i := range pts {
				if pts[i].at.Equal(r.ValidFrom) {
					pts[i].state = st
				}
			}
		} else {
			pts = append(pts, point{r.ValidFrom, st})
		}
		timeline[r.ProjectID] = pts
	}
	return out
}

// ImportResult says what an import recorded.
type ImportResult struct {
	RunID  string
	Rows   int
	DryRun bool
	// Changes were written (or would have been, in a dry run).
	Changes []ProjectChange
}

// Import writes the rows of a parsed file that change the stored history (see PlanImport).
func Import(ctx context.Context, store Store, rows []Row, now time.Time, dryRun bool, m *Metrics) (ImportResult, error) {
	now = now.UTC().Truncate(time.Second)
	res := ImportResult{RunID: runid.New("import", now), Rows: len(rows), DryRun: dryRun}
	var ids []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.ProjectID] {
			seen[r.ProjectID] = true
			ids = append(ids, r.ProjectID)
		}
	}
	if len(ids) == 0 {
		return res, nil
	}
	stored, err := store.History(ctx, ids, EndOfTime())
	if err != nil {
		return res, fmt.Errorf("accounts import: %w", err)
	}
	res.Changes = PlanImport(stored, rows)
	if dryRun {
		return res, nil
	}
	if err := write(ctx, store, res.Changes, SourceCSV, res.RunID, now); err != nil {
		return res, fmt.Errorf("accounts import %s: %w", res.RunID, err)
	}
	if m != nil {
		m.changes.WithLabelValues(string(SourceCSV)).Add(float64(len(res.Changes)))
	}
	return res, nil
}
