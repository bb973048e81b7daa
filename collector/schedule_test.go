package collector_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// planNow is mid-hour; the last complete hour starts at planLast.
var (
	planNow  = time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC)
	planLast = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

// at is Unix seconds of planLast + h hours, for ProjectState fields.
func at(h int) uint32 { return uint32(planLast.Add(time.Duration(h) * time.Hour).Unix()) }

func planInput(budget, size int, projects ...collector.ProjectState) collector.PlanInput {
	return collector.PlanInput{Now: planNow, Budget: budget, BatchSize: size, Projects: projects,
		Provisional: 2 * time.Hour, Lookback: 48 * time.Hour}
}

// members lists each batch's members.
func members(p collector.CyclePlan) [][]int32 {
	out := make([][]int32, len(p.Batches))
	for i, b := range p.Batches {
		out[i] = b.Members
	}
	return out
}

func equalBatches(a, b [][]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

func TestPlanCycle_Tiers(t *testing.T) {
	tests := []struct {
		name string
		s    collector.ProjectState
		want collector.Tier
	}{
		{"never active", collector.ProjectState{CompleteThrough: at(-3)}, collector.TierRolling},
		{"active after its complete hours", collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-2) + 600}, collector.TierActive},
		{"active before its complete hours", collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-4)}, collector.TierRolling},
		{"listed at its complete-through, already seen", collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-3), SeenActive: at(-3)}, collector.TierRolling},
		{"listed at its complete-through, new", collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-3), SeenActive: at(-5)}, collector.TierActive},
		{"active in the current hour", collector.ProjectState{CompleteThrough: at(0), LastActive: at(0) + 60}, collector.TierActive},
		{"at risk", collector.ProjectState{CompleteThrough: at(-3), Flags: collector.FlagAtRisk}, collector.TierAtRisk},
		{"active beats at risk", collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-1), Flags: collector.FlagAtRisk}, collector.TierActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := collector.PlanCycle(planInput(10, 100, tt.s))
			if p.Tier[0] != tt.want {
				t.Fatalf("tier %v, want %v", p.Tier[0], tt.want)
			}
			if p.Classified[tt.want] != 1 {
				t.Fatalf("classified %v, want one %v", p.Classified, tt.want)
			}
		})
	}
}

// Calls go closing → active → at risk → rolling, each tier oldest first; a call opened for a
// higher tier takes the org's next projects of lower tiers into its free places.
func TestPlanCycle_PriorityOrder(t *testing.T) {
	in := planInput(10, 2,
		collector.ProjectState{CompleteThrough: at(-30)},                                   // 0 rolling, oldest
		collector.ProjectState{CompleteThrough: at(-5), Flags: collector.FlagAtRisk},       // 1 at risk
		collector.ProjectState{CompleteThrough: at(-2), LastActive: at(-1)},                // 2 active
		collector.ProjectState{CompleteThrough: at(-6), LastActive: at(-1)},                // 3 active, older
		collector.ProjectState{CompleteThrough: at(-10)},                                   // 4 rolling
		collector.ProjectState{CompleteThrough: at(-7), Flags: collector.FlagAtRisk},       // 5 at risk, older
		collector.ProjectState{CompleteThrough: at(-4), LastActive: at(-3) + 1},            // 6 active
		collector.ProjectState{CompleteThrough: at(-1)},                                    // 7 rolling, newest
		collector.ProjectState{CompleteThrough: at(0), Flags: collector.FlagAtRisk},        // 8 at risk, nothing left
		collector.ProjectState{CompleteThrough: at(-20), LastActive: at(-21), Org: 0},      // 9 rolling
		collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-2), SeenActive: 0}, // 10 active
	)
	p := collector.PlanCycle(in)
	want := [][]int32{{3, 6}, {10, 2}, {5, 1}, {0, 9}, {4, 7}, {8}}
	if got := members(p); !equalBatches(got, want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	wantTiers := []collector.Tier{collector.TierActive, collector.TierActive, collector.TierAtRisk, collector.TierRolling, collector.TierRolling, collector.TierRolling}
	for i, b := range p.Batches {
		if b.Tier != wantTiers[i] {
			t.Errorf("batch %d tier %v, want %v", i, b.Tier, wantTiers[i])
		}
		if !b.To.Equal(planLast) {
			t.Errorf("batch %d ends %v, want the last complete hour %v", i, b.To, planLast)
		}
	}
	// Priority tiers re-read the provisional hours, rolling the lookback.
	if want := planLast.Add(-8 * time.Hour); !p.Batches[0].From.Equal(want) {
		t.Errorf("active batch from %v, want complete-through of project 3 less 2 h = %v", p.Batches[0].From, want)
	}
	if want := planLast.Add(-78 * time.Hour); !p.Batches[3].From.Equal(want) {
		t.Errorf("rolling batch from %v, want complete-through of project 0 less 48 h = %v", p.Batches[3].From, want)
	}
	// A project with nothing new still re-reads: its window ends at the last complete hour.
	if want := planLast.Add(-49 * time.Hour); !p.Batches[5].From.Equal(want) {
		t.Errorf("last batch from %v, want %v", p.Batches[5].From, want)
	}
}

// The budget caps the calls; what the priority tiers leave goes to the rolling sweep, and a
// priority call with free places is filled from it.
func TestPlanCycle_BudgetCapAndUnusedToRolling(t *testing.T) {
	var projects []collector.ProjectState
	for i := range 50 {
		projects = append(projects, collector.ProjectState{CompleteThrough: at(-1 - i)}) // i+1 hours behind
	}
	projects[40].LastActive = at(-1) // one active project, far behind
	// and due for a deep call (its last one more than a lookback ago), as rolling calls are:
	// only calls of one depth share places.
	projects[40].RereadThrough = at(-49)
	for _, budget := range []int{0, 1, 3, 7, 100} {
		p := collector.PlanCycle(planInput(budget, 4, projects...))
		wantCalls := min(budget, 13) // 50 projects at 4 a call
		if len(p.Batches) != wantCalls {
			t.Fatalf("budget %d: %d calls, want %d", budget, len(p.Batches), wantCalls)
		}
		if budget == 0 {
			continue
		}
		// Rolling fills the active call, then opens calls, oldest first.
		var rolling []int32
		for i := int32(49); i >= 0; i-- {
			if i != 40 {
				rolling = append(rolling, i)
			}
		}
		want := [][]int32{append([]int32{40}, rolling[:3]...)}
		for k := 3; k < len(rolling); k += 4 {
			want = append(want, rolling[k:min(k+4, len(rolling))])
		}
		if got := members(p); !equalBatches(got, want[:wantCalls]) {
			t.Fatalf("budget %d: calls %v, want %v", budget, got, want[:wantCalls])
		}
		if p.Batches[0].Tier != collector.TierActive || p.Batches[len(p.Batches)-1].Tier != collector.TierRolling && budget > 1 {
			t.Fatalf("budget %d: tiers of the first and last call %v, %v", budget, p.Batches[0].Tier, p.Batches[len(p.Batches)-1].Tier)
		}
		placed := 0
		for _, b := range p.Batches {
			placed += len(b.Members)
		}
		if want := min(50, 4*budget); placed != want || p.Planned[collector.TierRolling]+p.Planned[collector.TierActive] != want {
			t.Fatalf("budget %d: placed %d (planned %v), want %d", budget, placed, p.Planned, want)
		}
	}
}

// A priority project re-reads only the provisional window, but once a lookback after its last
// deep call it re-reads the lookback before that call, so Neon's late revisions reach a project
// that stays active; deep and shallow projects never share a call (else every call would read
// a deep window), and a deep priority call takes rolling projects into its free places.
func TestPlanCycle_DeepOnceALookback(t *testing.T) {
	p := collector.PlanCycle(planInput(10, 100,
		collector.ProjectState{CompleteThrough: at(-1), RereadThrough: at(-1), LastActive: at(0) + 60},  // 0 active, deep call recent
		collector.ProjectState{CompleteThrough: at(-1), RereadThrough: at(-48), LastActive: at(0) + 60}, // 1 active, deep call due
		collector.ProjectState{CompleteThrough: at(-5)},                                                 // 2 rolling
	))
	type call struct {
		members []int32
		deep    bool
		from    time.Time
	}
	want := []call{
		{[]int32{0}, false, planLast.Add(-3 * time.Hour)},    // complete-through less the 2 h provisional window
		{[]int32{1, 2}, true, planLast.Add(-96 * time.Hour)}, // the last deep call less the 48 h lookback
	}
	if len(p.Batches) != len(want) {
		t.Fatalf("calls %v, want %v", members(p), want)
	}
	for i, w := range want {
		b := p.Batches[i]
		if !equalBatches([][]int32{b.Members}, [][]int32{w.members}) || b.Deep != w.deep || !b.From.Equal(w.from) || b.Tier != collector.TierActive {
			t.Errorf("call %d: %v deep %v from %v tier %v, want %v", i, b.Members, b.Deep, b.From, b.Tier, w)
		}
	}
}

// Neon serves 168 hours of hourly data: a window never starts before 167 hours before the
// last complete hour.
func TestPlanCycle_ClampedToHourlyHorizon(t *testing.T) {
	p := collector.PlanCycle(planInput(5, 100,
		collector.ProjectState{CompleteThrough: at(-300)},
		collector.ProjectState{CompleteThrough: at(-150), LastActive: at(-1)},
		collector.ProjectState{CompleteThrough: 0},
	))
	horizon := planLast.Add(-167 * time.Hour)
	if len(p.Batches) != 1 {
		t.Fatalf("%d calls, want 1 (one org, 3 projects)", len(p.Batches))
	}
	if b := p.Batches[0]; !b.From.Equal(horizon) || !b.To.Equal(planLast) || b.To.Sub(b.From) > 168*time.Hour {
		t.Fatalf("window [%v, %v), want [%v, %v)", b.From, b.To, horizon, planLast)
	}
}

// While a closed period's grace runs, every project not complete through its end comes first,
// even before active ones.
func TestPlanCycle_ClosingFirstNearPeriodEnd(t *testing.T) {
	in := planInput(2, 1,
		collector.ProjectState{CompleteThrough: at(-1), LastActive: at(0) - 60}, // 0 closing (and active)
		collector.ProjectState{CompleteThrough: at(0), LastActive: at(0) + 60},  // 1 active, complete through the end
		collector.ProjectState{CompleteThrough: at(-2)},                         // 2 closing
		collector.ProjectState{CompleteThrough: at(-3), LastActive: at(-1)},     // 3 closing
	)
	in.PeriodEnd = planLast
	p := collector.PlanCycle(in)
	if got, want := members(p), [][]int32{{3}, {2}}; !equalBatches(got, want) {
		t.Fatalf("batches %v, want the two oldest closing projects %v", got, want)
	}
	if p.Classified[collector.TierClosing] != 3 || p.Tier[1] != collector.TierActive {
		t.Fatalf("classified %v, tiers %v", p.Classified, p.Tier)
	}
	// A period end after the last complete hour is not closing.
	in.PeriodEnd = planLast.Add(time.Hour)
	if p := collector.PlanCycle(in); p.Classified[collector.TierClosing] != 0 {
		t.Fatalf("period ending after the last complete hour: %d closing", p.Classified[collector.TierClosing])
	}
}

func TestClosingPeriodEnd(t *testing.T) {
	month := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	tests := []struct {
		now  time.Time
		want time.Time
		ok   bool
	}{
		{planLast.Add(20 * time.Minute), planLast, true},
		{planLast.Add(59 * time.Minute), planLast, true},
		{planLast.Add(time.Hour), time.Time{}, false},
		{planLast.Add(-20 * time.Minute), time.Time{}, false},
		{planLast.Add(10 * 24 * time.Hour), time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := collector.ClosingPeriodEnd(tt.now, month, time.Hour)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ClosingPeriodEnd(%v) = %v, %v; want %v, %v", tt.now, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := collector.ClosingPeriodEnd(planNow, nil, time.Hour); ok {
		t.Error("no period rule, yet a closing period")
	}
}

// A call names projects of one org; orgs share the budget, oldest first across them.
func TestPlanCycle_OneOrgPerCall(t *testing.T) {
	var projects []collector.ProjectState
	for i := range 12 {
		projects = append(projects, collector.ProjectState{CompleteThrough: at(-1 - i%6), Org: uint16(i % 3)})
	}
	p := collector.PlanCycle(planInput(100, 3, projects...))
	seen := map[int32]bool{}
	for _, b := range p.Batches {
		for _, m := range b.Members {
			if projects[m].Org != b.Org {
				t.Fatalf("call of org %d holds project %d of org %d", b.Org, m, projects[m].Org)
			}
			if seen[m] {
				t.Fatalf("project %d in two calls", m)
			}
			seen[m] = true
		}
	}
	if len(seen) != 12 || len(p.Batches) != 6 {
		t.Fatalf("%d projects in %d calls, want 12 in 6 (4 per org at 3 a call)", len(seen), len(p.Batches))
	}
}

// Randomized: whatever the fleet, calls never exceed the budget or the batch size, a project
// is in at most one call, every window fits Neon's hourly horizon, and priority tiers come
// first.
func TestPlanCycle_Invariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		n := rng.IntN(400)
		projects := make([]collector.ProjectState, n)
		for i := range projects {
			projects[i] = collector.ProjectState{CompleteThrough: at(-rng.IntN(250)), Org: uint16(rng.IntN(3))}
			if rng.IntN(4) == 0 {
				projects[i].LastActive = at(-rng.IntN(10))
			}
			if rng.IntN(10) == 0 {
				projects[i].Flags = collector.FlagAtRisk
			}
		}
		budget, size := rng.IntN(20), 1+rng.IntN(100)
		p := collector.PlanCycle(planInput(budget, size, projects...))
		if len(p.Batches) > budget {
			t.Fatalf("round %d: %d calls over the budget of %d", round, len(p.Batches), budget)
		}
		seen := map[int32]bool{}
		rank := map[collector.Tier]int{collector.TierClosing: 0, collector.TierActive: 1, collector.TierAtRisk: 2, collector.TierRolling: 3}
		for i, b := range p.Batches {
			if len(b.Members) == 0 || len(b.Members) > size || b.From.Before(planLast.Add(-167*time.Hour)) || !b.To.Equal(planLast) || !b.From.Before(b.To) {
				t.Fatalf("round %d: bad call %+v", round, b)
			}
			if i > 0 && rank[b.Tier] < rank[p.Batches[i-1].Tier] {
				t.Fatalf("round %d: call %d of tier %v after one of %v", round, i, b.Tier, p.Batches[i-1].Tier)
			}
			for _, m := range b.Members {
				if seen[m] {
					t.Fatalf("round %d: project %d twice", round, m)
				}
				seen[m] = true
			}
		}
		// Calls are per org and depth: a priority-tier project with hours left whose last deep
		// call (here its complete-through) is under a lookback old is read shallow, every other
		// deep, and the two never share a call.
		type group struct {
			org     uint16
			shallow bool
		}
		perGroup := map[group]int{}
		for i, s := range projects {
			shallow := p.Tier[i] != collector.TierRolling && s.CompleteThrough < at(0) && s.CompleteThrough > at(-48)
			perGroup[group{s.Org, shallow}]++
		}
		need := 0
		for _, k := range perGroup {
			need += (k + size - 1) / size
		}
		if budget >= need && len(seen) != n {
			t.Fatalf("round %d: budget of %d calls covers the %d needed, yet %d of %d projects placed", round, budget, need, len(seen), n)
		}
		if budget < need && len(p.Batches) != budget {
			t.Fatalf("round %d: %d calls of a budget of %d with work left", round, len(p.Batches), budget)
		}
	}
}

// BenchmarkPlanCycle plans a cycle over 1,000,000 projects in 3 orgs: 10 % active, 1 % at
// risk, complete-through spread over the last 100 hours, 150 calls of 100.
func BenchmarkPlanCycle(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	projects := make([]collector.ProjectState, n)
	for i := range projects {
		projects[i] = collector.ProjectState{CompleteThrough: at(-1 - rng.IntN(100)), Org: uint16(i % 3)}
		if rng.IntN(10) == 0 {
			projects[i].LastActive = at(0) + 60
		}
		if rng.IntN(100) == 0 {
			projects[i].Flags = collector.FlagAtRisk
		}
	}
	in := planInput(150, 100, projects...)
	b.ReportAllocs()
	var p collector.CyclePlan
	for b.Loop() {
		p = collector.PlanCycle(in)
	}
	if len(p.Batches) != 150 {
		b.Fatalf("%d calls, want 150", len(p.Batches))
	}
}
