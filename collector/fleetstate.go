package collector

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// fleetState is a cycle's view of the fleet, compact: the project ids packed in one byte arena
// (no string headers, no ProjectSummary kept) and the planner's 16-byte state per project. At
// a million projects that is about 45 MB. Once listed, the projects are ordered by (org, id),
// the order of the stores' reads and of the plan's ties, so a call names projects that lie
// close together in the facts table's key order.
type fleetState struct {
	arena    []byte
	offs     []uint32 // project i's id is arena[offs[i]:offs[i+1]]
	projects []ProjectState
	// orgEnd[o] is where org o's projects end (they start at orgEnd[o-1]) once sorted.
	orgEnd []int
}

func newFleetState(orgs int) *fleetState {
	return &fleetState{offs: []uint32{0}, orgEnd: make([]int, orgs)}
}

func (s *fleetState) add(org uint16, id string, lastActive time.Time) error {
	if uint64(len(s.arena))+uint64(len(id)) > 1<<32-1 {
		return fmt.Errorf("more project ids than fit one cycle (4 GB of ids)")
	}
	s.arena = append(s.arena, id...)
	s.offs = append(s.offs, uint32(len(s.arena)))
	s.projects = append(s.projects, ProjectState{Org: org, LastActive: unix32(lastActive)})
	return nil
}

func (s *fleetState) id(i int32) []byte { return s.arena[s.offs[i]:s.offs[i+1]] }

// idString returns project i's id as a string (allocated; for requests and rows).
func (s *fleetState) idString(i int32) string { return string(s.id(i)) }

// unix32 is t in Unix seconds, 0 for the zero time or before 1970.
func unix32(t time.Time) uint32 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	return uint32(min(t.Unix(), 1<<32-1))
}

// truncate drops the projects from n on (an org whose listing failed).
func (s *fleetState) truncate(n int) {
	s.arena, s.offs, s.projects = s.arena[:s.offs[n]], s.offs[:n+1], s.projects[:n]
}

// sortByID orders the projects by (org, id), rebuilding the arena in that order, and refuses
// an id listed twice in one org.
func (s *fleetState) sortByID() error {
	perm := make([]int32, len(s.projects))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		if oa, ob := s.projects[a].Org, s.projects[b].Org; oa != ob {
			return int(oa) - int(ob)
		}
		return bytes.Compare(s.id(a), s.id(b))
	})
	arena := make([]byte, 0, len(s.arena))
	offs := make([]uint32, 1, len(s.offs))
	projects := make([]ProjectState, len(s.projects))
	for k, i := range perm {
		if k > 0 && projects[k-1].Org == s.projects[i].Org && bytes.Equal(arena[offs[k-1]:], s.id(i)) {
			return fmt.Errorf("neon listed project %s twice", s.id(i))
		}
		arena = append(arena, s.id(i)...)
		offs = append(offs, uint32(len(arena)))
		projects[k] = s.projects[i]
	}
	s.arena, s.offs, s.projects = arena, offs, projects
	for o := range s.orgEnd {
		s.orgEnd[o], _ = slices.BinarySearchFunc(s.projects, uint16(o+1), func(p ProjectState, org uint16) int { return int(p.Org) - int(org) })
	}
	return nil
}

// orgRange is org o's part of the sorted projects, [from, to).
func (s *fleetState) orgRange(o int) (from, to int) {
	if o > 0 {
		from = s.orgEnd[o-1]
	}
	return from, s.orgEnd[o]
}

// join walks ids given in ascending order (as a store reads them) along org o's sorted
// projects and calls fn for each listed project of the same id; ids not listed (deleted
// projects) are skipped. It returns a function taking the next id.
func (s *fleetState) join(o int) func(id string, fn func(i int32)) error {
	k, end := s.orgRange(o)
	prev := ""
	return func(id string, fn func(i int32)) error {
		if id < prev {
			return fmt.Errorf("project %s read after %s: the store's order is not the ids' order", id, prev)
		}
		prev = id
		for k < end && string(s.id(int32(k))) < id {
			k++
		}
		if k < end && string(s.id(int32(k))) == id {
			fn(int32(k))
		}
		return nil
	}
}

// listOrg reads org o's project list page by page into the state, keeping of each project only
// its id and compute_last_active_at. It returns how many projects Neon listed.
func (s *fleetState) listOrg(ctx context.Context, n FleetNeon, o int, orgID string) (int, error) {
	listed := 0
	for page, err := range n.ListProjects(ctx, neon.ListProjectsQuery{OrgID: orgID, Limit: neon.MaxProjectsLimit}) {
		if err != nil {
			return listed, fmt.Errorf("list projects of org %s: %w", orgID, err)
		}
		for _, p := range page.Projects {
			if p.OrgID != "" && p.OrgID != orgID {
				return listed, fmt.Errorf("list projects of org %s: Neon listed project %s of org %s", orgID, p.ID, p.OrgID)
			}
			if err := s.add(uint16(o), p.ID, p.ComputeLastActiveAt); err != nil {
				return listed, err
			}
			listed++
		}
	}
	return listed, nil
}

// readProgress sets org o's projects' complete-through and last collected activity from the
// store; a project without progress starts at start.
func (s *fleetState) readProgress(ctx context.Context, st FleetStore, o int, orgID string, start time.Time) error {
	from, to := s.orgRange(o)
	for i := from; i < to; i++ {
		s.projects[i].CompleteThrough, s.projects[i].RereadThrough = unix32(start), unix32(start)
	}
	next := s.join(o)
	return st.ScanProgress(ctx, orgID, func(p ProjectProgress) error {
		return next(p.ProjectID, func(i int32) {
			s.projects[i].CompleteThrough, s.projects[i].RereadThrough = unix32(p.CompleteThrough), unix32(p.RereadThrough)
			s.projects[i].SeenActive = unix32(p.LastActiveAt)
		})
	})
}

// readAtRisk flags org o's projects enforcement holds at risk.
func (s *fleetState) readAtRisk(ctx context.Context, st FleetStore, o int, orgID string) error {
	next := s.join(o)
	return st.ScanAtRisk(ctx, orgID, func(id string) error {
		return next(id, func(i int32) { s.projects[i].Flags |= FlagAtRisk })
	})
}

// oldest is the earliest complete-through among org o's projects, false when it lists none.
func (s *fleetState) oldest(o int) (time.Time, bool) {
	from, to := s.orgRange(o)
	if from == to {
		return time.Time{}, false
	}
	m := s.projects[from].CompleteThrough
	for _, p := range s.projects[from+1 : to] {
		m = min(m, p.CompleteThrough)
	}
	return time.Unix(int64(m), 0).UTC(), true
}
