package collector

import (
	"fmt"
	"time"
)

// Tier is why a budgeted cycle collects a project. The scheduler serves tiers in the order of
// Tiers: a closing billing period first, then projects active since their last collected hour,
// then projects enforcement holds at risk, then the rolling sweep of everyone. The values are
// those of collection_progress.tier.
type Tier uint8

const (
	TierActive  Tier = 1
	TierAtRisk  Tier = 2
	TierRolling Tier = 3
	TierClosing Tier = 4
	numTiers         = 5 // Tier values index arrays of this size
)

// Tiers lists the tiers in the scheduler's priority order.
func Tiers() []Tier { return []Tier{TierClosing, TierActive, TierAtRisk, TierRolling} }

func (t Tier) String() string {
	switch t {
	case TierActive:
		return "active"
	case TierAtRisk:
		return "at_risk"
	case TierRolling:
		return "rolling"
	case TierClosing:
		return "closing"
	}
	return fmt.Sprintf("tier(%d)", uint8(t))
}

// ParseTier reads a tier's name.
func ParseTier(s string) (Tier, bool) {
	for _, t := range Tiers() {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// MaxBatch is the most projects one consumption call names (Neon's limit on project_ids).
const MaxBatch = 100

// FlagAtRisk marks a project enforcement holds near or over a limit on a hard-limit plan.
const FlagAtRisk uint8 = 1

// ProjectState is what the planner knows of one project. It is 20 bytes, so a cycle over a
// million projects plans in a few megabytes. Times are Unix seconds (uint32 lasts until 2106).
type ProjectState struct {
	// CompleteThrough: every hour starting before it is collected; on the hour. For a project
	// without progress the applier puts its org's watermark, or the lookback, here.
	CompleteThrough uint32
	// RereadThrough is the complete-through of the project's last call that re-read the
	// lookback before the previous such call (a deep call): every revision Neon makes to an
	// hour within the lookback after the hour is caught by the next deep call. 0 (or a value
	// after CompleteThrough) counts as CompleteThrough.
	RereadThrough uint32
	// LastActive is compute_last_active_at from this cycle's project list; 0 when never.
	LastActive uint32
	// SeenActive is the compute_last_active_at stored when the project was last collected.
	SeenActive uint32
	Org        uint16 // index of the project's org in the cycle's list of orgs
	Flags      uint8  // FlagAtRisk
}

// PlanInput is everything one cycle's plan depends on.
type PlanInput struct {
	Now time.Time
	// Budget is the calls the cycle may spend (each batch is one call when Neon answers).
	Budget int
	// BatchSize is the most projects per call (default and maximum MaxBatch).
	BatchSize int
	Projects  []ProjectState
	// Provisional is re-read before a project's complete hours by the priority tiers (Neon
	// still revises those hours); Lookback is re-read by the rolling sweep, which so also
	// picks up Neon's late revisions. Each at least an hour.
	Provisional, Lookback time.Duration
	// PeriodEnd, when not zero, is the end of a billing period that closed at or before the
	// last complete hour and whose invoice grace has not ended: projects not yet complete
	// through it form the closing tier.
	PeriodEnd time.Time
}

// Batch is one consumption call: up to BatchSize projects of one org over [From, To).
type Batch struct {
	Org  uint16
	Tier Tier // the tier it was opened for; members of lower tiers fill its free places
	// Deep: the call re-reads the lookback before each member's RereadThrough (the rolling
	// sweep always; the priority tiers once a lookback), not just the provisional hours.
	Deep     bool
	From, To time.Time
	Members  []int32 // indexes into PlanInput.Projects
}

// CyclePlan is a cycle's plan: its calls in priority order and every project's tier.
type CyclePlan struct {
	Batches []Batch
	// Tier of each project of PlanInput.Projects (same index), for freshness per tier.
	Tier []Tier
	// Classified counts the projects of each tier; Planned those placed in a batch.
	Classified, Planned [numTiers]int
}

// PlanCycle spends a cycle's budget of calls. Every project gets a tier: closing when a
// period closed and its hours before PeriodEnd are not all complete; else active when Neon saw
// a compute of it active at or after its complete-through (and that activity was not what its
// last collection saw already); else at risk when flagged; else rolling. Calls then go, in
// priority order and each tier oldest complete-through first, to the projects of each
// priority tier that have complete hours left to collect; whatever budget remains goes to the
// rolling sweep of every project not yet placed, oldest first (so a small fleet is read whole
// every cycle, and in a large one every project's turn comes before its hours leave Neon's
// 168-hour window). A call holds projects of one org only; a call opened for a higher tier
// that is not full takes that org's next projects of the lower tiers, so no place is wasted.
// Calls never exceed Budget. Each call's window ends at the last complete hour and starts at
// its oldest member's complete-through less the re-read (Provisional for priority tiers,
// Lookback for rolling), clamped to Neon's hourly horizon (167 h before the last complete hour).
func PlanCycle(in PlanInput) CyclePlan {
	p := newPlanner(in)
	p.classify()
	order := p.oldestFirst()
	for _, t := range Tiers() {
		if !p.fill(order, t) {
			break
		}
	}
	return p.plan
}

// planner is PlanCycle's working state.
type planner struct {
	in            PlanInput
	size          int
	last, horizon uint32 // last complete hour, earliest hour Neon still serves hourly
	periodEnd     uint32
	plan          CyclePlan
	placed        []uint64 // bitset of projects already in a batch
	open          map[openKey]int
	room          int // batches with free places
}

func newPlanner(in PlanInput) *planner {
	last := in.Now.UTC().Truncate(time.Hour)
	p := &planner{
		in: in, size: in.BatchSize,
		last:    uint32(last.Unix()),
		horizon: uint32(last.Add(-(HourlyWindow - time.Hour)).Unix()),
		placed:  make([]uint64, (len(in.Projects)+63)/64),
		open:    map[openKey]int{},
	}
	if p.size <= 0 || p.size > MaxBatch {
		p.size = MaxBatch
	}
	if !in.PeriodEnd.IsZero() && !in.PeriodEnd.After(last) {
		p.periodEnd = uint32(in.PeriodEnd.Unix())
	}
	p.in.Provisional = max(in.Provisional, time.Hour)
	// The rolling re-read covers the provisional hours too: they become final only when read
	// again after Neon stopped revising them.
	p.in.Lookback = max(in.Lookback, p.in.Provisional)
	return p
}

// classify gives every project its tier.
func (p *planner) classify() {
	p.plan.Tier = make([]Tier, len(p.in.Projects))
	for i := range p.in.Projects {
		t := p.tierOf(&p.in.Projects[i])
		p.plan.Tier[i] = t
		p.plan.Classified[t]++
	}
}

func (p *planner) tierOf(s *ProjectState) Tier {
	ct := s.CompleteThrough
	switch {
	case p.periodEnd != 0 && ct < p.periodEnd:
		return TierClosing
	case s.LastActive != 0 && s.LastActive >= ct && (s.LastActive > ct || s.LastActive > s.SeenActive):
		// At ct exactly only when the list moved since the last collection: Neon may report
		// the end of an hour that was active, and that hour is collected already.
		return TierActive
	case s.Flags&FlagAtRisk != 0:
		return TierAtRisk
	}
	return TierRolling
}

// oldestFirst returns the projects' indexes ordered by complete-through, oldest first (all
// those before the horizon count as equally old), ties in index order: a counting sort over
// the hours of the horizon, linear in the fleet.
func (p *planner) oldestFirst() []int32 {
	span := int((p.last-p.horizon)/3600) + 2
	bucket := func(ct uint32) int {
		switch {
		case ct <= p.horizon:
			return 0
		case ct >= p.last:
			return span - 1
		}
		return int((ct - p.horizon) / 3600)
	}
	start := make([]int, span+1)
	for i := range p.in.Projects {
		start[bucket(p.in.Projects[i].CompleteThrough)+1]++
	}
	for b := 1; b <= span; b++ {
		start[b] += start[b-1]
	}
	order := make([]int32, len(p.in.Projects))
	for i := range p.in.Projects {
		b := bucket(p.in.Projects[i].CompleteThrough)
		order[start[b]] = int32(i)
		start[b]++
	}
	return order
}

// fill places tier t's projects (for rolling: every project not yet placed) into batches, in
// order. It reports false once the budget is spent and no batch has a free place.
func (p *planner) fill(order []int32, t Tier) bool {
	rolling := t == TierRolling
	for _, i := range order {
		if p.placed[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		s := &p.in.Projects[i]
		if !rolling && (p.plan.Tier[i] != t || s.CompleteThrough >= p.last) {
			continue // another tier, or no complete hour left to collect at this priority
		}
		if !p.place(i, t) && p.room == 0 {
			return false
		}
	}
	return len(p.plan.Batches) < p.in.Budget || p.room > 0
}

// openKey is an open batch's org and depth: deep and shallow members never share a call, or
// every shallow call would read a deep window.
type openKey struct {
	org  uint16
	deep bool
}

// place adds project i to its org's open batch of its depth, opening one (for tier t) while
// the budget allows; it reports whether the project was placed.
func (p *planner) place(i int32, t Tier) bool {
	s := &p.in.Projects[i]
	key := openKey{s.Org, p.deep(s, t)}
	b, ok := p.open[key]
	if !ok {
		if len(p.plan.Batches) >= p.in.Budget {
			return false
		}
		b = len(p.plan.Batches)
		last := time.Unix(int64(p.last), 0).UTC()
		p.plan.Batches = append(p.plan.Batches, Batch{Org: s.Org, Tier: t, Deep: key.deep, From: last, To: last, Members: make([]int32, 0, p.size)})
		p.open[key] = b
		p.room++
	}
	batch := &p.plan.Batches[b]
	batch.Members = append(batch.Members, i)
	p.placed[i/64] |= 1 << (i % 64)
	p.plan.Planned[p.plan.Tier[i]]++
	if from := p.from(s, t); from.Before(batch.From) {
		batch.From = from
	}
	if len(batch.Members) == p.size {
		delete(p.open, key)
		p.room--
	}
	return true
}

// deep reports whether project s, placed for tier t, re-reads the lookback: always for the
// rolling sweep; for a priority tier once its last deep call is a lookback old, so a project
// that stays active still gets Neon's late revisions.
func (p *planner) deep(s *ProjectState, t Tier) bool {
	return t == TierRolling || int64(p.last)-int64(s.reread()) >= int64(p.in.Lookback/time.Second)
}

// reread is RereadThrough, or CompleteThrough when that is earlier or it is unset.
func (s *ProjectState) reread() uint32 {
	if s.RereadThrough == 0 {
		return s.CompleteThrough
	}
	return min(s.RereadThrough, s.CompleteThrough)
}

// from is where a project's window starts when placed for tier t: a deep call's at its last
// deep call's complete-through (never after its complete-through) less the lookback; a shallow
// one's at its complete-through (or the last complete hour's start when nothing is left) less
// the provisional window; clamped to the horizon.
func (p *planner) from(s *ProjectState, t Tier) time.Time {
	reread, through := p.in.Provisional, s.CompleteThrough
	if p.deep(s, t) {
		reread, through = p.in.Lookback, s.reread()
	}
	ct := time.Unix(int64(min(through, p.last-3600)), 0).UTC().Truncate(time.Hour)
	from := ct.Add(-reread).Truncate(time.Hour) // a whole hour more, never less, than reread
	if h := time.Unix(int64(p.horizon), 0).UTC(); from.Before(h) {
		from = h
	}
	return from
}
