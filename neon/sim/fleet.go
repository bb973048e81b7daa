package sim

import (
	"math"
	"strconv"
)

// Org indexes.
const (
	orgFree = iota
	orgLaunch
	orgScale
	orgLegacy
	numOrgs
)

// Plans, also the period_plan values.
const (
	planFree uint8 = iota
	planLaunch
	planScale
	planBusiness
)

func planName(p uint8) string {
	switch p {
	case planLaunch:
		return "launch"
	case planScale:
		return "scale"
	case planBusiness:
		return "business"
	}
	return "free"
}

// Usage profiles.
const (
	profileIdle uint8 = iota
	profileSteady
	profileBursty
	profileRunaway
)

func profileName(p uint8) string {
	switch p {
	case profileSteady:
		return "steady"
	case profileBursty:
		return "bursty"
	case profileRunaway:
		return "runaway"
	case profileDormant:
		return "dormant"
	case profileDiurnal:
		return "diurnal"
	case profileAlwaysOn:
		return "always-on"
	}
	return "idle"
}

type orgInfo struct {
	id           string
	name         string
	plan         string
	subscription string  // owner.subscription_type
	projects     []int32 // newest-created first
}

// project holds the static, seed-derived description of one project (about 120 bytes).
type project struct {
	id         string
	idx        int32
	orgPos     int32 // position in its org's newest-first list
	org        uint8
	profile    uint8
	endpoints  uint8 // 1–3
	children   uint8 // child branches
	phase      uint8 // hour offset of the owner's day
	planBefore uint8 // plan before planChange
	planAfter  uint8 // plan from planChange on, and the plan when there is no change
	created    int64 // unix seconds
	planChange int64 // unix seconds of a mid-month plan change, 0 if none
	cu         float64
	storage    float64 // bytes at creation
	growth     float32 // relative storage growth per 30 days
	childFrac  float32
	restore    float32 // instant-restore history as a fraction of storage
	snapshot   float32
	egress     float32 // public transfer, bytes per active second
	private    float32
	write      float32 // written bytes per active second
}

// Salts separate the random streams drawn from the same (project, hour).
const (
	saltOrg uint64 = iota + 1
	saltID
	saltProfile
	saltParam
	saltCreated
	saltActive
	saltActiveLen
	saltCU
	saltUtil
	saltStorage
	saltRev
	saltEndpoint
	saltPeriod
	saltOp
	saltRequest
	saltPlanChange
)

// buildFleet creates n projects: counts per org are fixed (≈10 % free, 40 % launch, 40 %
// scale, 10 % legacy, at least one each) and spread over creation order by a seeded shuffle.
func (s *Sim) buildFleet(n int, now0 int64) {
	s.orgs = [numOrgs]orgInfo{
		orgFree:   {id: "org-sim-free", name: "Sim Free", plan: "free", subscription: "free_v3"},
		orgLaunch: {id: "org-sim-launch", name: "Sim Launch", plan: "launch", subscription: "launch_v3"},
		orgScale:  {id: "org-sim-scale", name: "Sim Scale", plan: "scale", subscription: "scale_v3"},
		orgLegacy: {id: "org-sim-legacy", name: "Sim Legacy", plan: "business", subscription: "business"},
	}
	free := max(1, n/10)
	legacy := max(1, n/10)
	launch := max(1, (n-free-legacy)/2)
	labels := make([]uint8, n)
	for i := range labels {
		switch {
		case i < free:
			labels[i] = orgFree
		case i < free+legacy:
			labels[i] = orgLegacy
		case i < free+legacy+launch:
			labels[i] = orgLaunch
		default:
			labels[i] = orgScale
		}
	}
	for i := n - 1; i > 0; i-- {
		j := int(s.rnd(uint64(i), 0, saltOrg) % uint64(i+1))
		labels[i], labels[j] = labels[j], labels[i]
	}

	// Creation instants are distinct, all before the first hour of usage, spread over up to a
	// year, so every project has usage in every hour of the history.
	hs := s.histHour * 3600
	step := max(int64(2), min(int64(6*3600), int64(365*86400)/int64(n)))
	s.projects = make([]project, n)
	s.byID = make(map[string]int32, n)
	for i := range s.projects {
		p := &s.projects[i]
		p.idx = int32(i)
		p.org = labels[i]
		jitter := int64(s.rnd(uint64(i), 0, saltCreated) % uint64(step/2))
		p.created = hs - 3600 - int64(n-1-i)*step - jitter
		for attempt := uint64(0); ; attempt++ {
			id := s.name(uint64(i), attempt, saltID, "")
			if _, dup := s.byID[id]; !dup {
				p.id = id
				break
			}
		}
		s.byID[p.id] = int32(i)
		s.params(p)
	}
	for i := n - 1; i >= 0; i-- {
		p := &s.projects[i]
		o := &s.orgs[p.org]
		p.orgPos = int32(len(o.projects))
		o.projects = append(o.projects, int32(i))
	}
	s.planChanges(n, now0)
}

// params draws a project's profile and static usage parameters.
func (s *Sim) params(p *project) {
	i := uint64(p.idx)
	u := func(k uint64) float64 { return unit(s.rnd(i, k, saltParam)) }
	logU := func(k uint64, lo, hi float64) float64 { return lo * math.Pow(hi/lo, u(k)) }

	x := unit(s.rnd(i, 0, saltProfile))
	switch {
	case s.act.on:
		p.profile = s.act.class(x)
	case x < 0.35:
		p.profile = profileIdle
	case x < 0.70:
		p.profile = profileSteady
	case x < 0.95:
		p.profile = profileBursty
	default:
		p.profile = profileRunaway
	}
	switch p.profile {
	case profileIdle:
		p.cu = 0.25
	case profileSteady:
		p.cu = logU(1, 0.25, 2)
	case profileBursty:
		p.cu = logU(1, 0.5, 4)
	case profileRunaway:
		p.cu = logU(1, 4, 8)
	default:
		p.cu = fleetCU(p.profile, logU)
	}
	if u(2) < 0.01 {
		p.storage = logU(3, 1e12, 5e12) // a few multi-TB projects
	} else {
		p.storage = logU(3, 5e8, 8e10)
	}
	p.growth = float32(0.05 * u(4))
	if u(5) >= 0.4 {
		most := 12.0
		if p.profile == profileRunaway {
			most = 30
		}
		p.children = uint8(1 + most*u(6))
		p.childFrac = float32(0.02 + 0.28*u(7))
	}
	p.restore = float32(0.01 + 0.14*u(8))
	if u(9) < 0.2 {
		p.snapshot = float32(0.05 + 0.45*u(10))
	}
	if p.profile == profileRunaway {
		p.egress = float32(logU(11, 1e5, 1e6))
	} else {
		p.egress = float32(logU(11, 1e3, 1e5))
	}
	if u(12) < 0.1 {
		p.private = float32(logU(13, 1e3, 1e5))
	}
	p.write = float32(logU(14, 1e3, 5e5))
	p.phase = uint8(24 * u(15))
	p.endpoints = 1
	if x := u(16); x < 0.3 {
		p.endpoints = 2
		if x < 0.1 {
			p.endpoints = 3
		}
	}
	switch p.org {
	case orgLaunch:
		p.planAfter = planLaunch
	case orgScale:
		p.planAfter = planScale
	case orgLegacy:
		p.planAfter = planBusiness
	default:
		p.planAfter = planFree
	}
	p.planBefore = p.planAfter
}

// planChanges gives ≈5 % of all projects (taken from launch and scale) a plan change at a
// non-round instant inside the history: scale projects upgraded from launch, launch projects
// downgraded from scale. Half of them fall in the last six days, inside the hourly window.
func (s *Sim) planChanges(n int, now0 int64) {
	lo := s.histHour*3600 + 3600
	hi := now0 - 3600
	if hi-lo < 86400 {
		return
	}
	want := max(1, int(math.Round(0.05*float64(n))))
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := int(s.rnd(uint64(i), 1, saltPlanChange) % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	for _, idx := range perm {
		if want == 0 {
			break
		}
		p := &s.projects[idx]
		if p.org != orgLaunch && p.org != orgScale {
			continue
		}
		want--
		r := s.rnd(uint64(idx), 2, saltPlanChange)
		from := lo
		if r&1 == 0 && hi-6*86400 > lo {
			from = hi - 6*86400
		}
		t := from + int64(unit(mix64(r))*float64(hi-from))
		if t%60 == 0 {
			t += 17
		}
		p.planChange = t
		if p.org == orgScale {
			p.planBefore = planLaunch
		} else {
			p.planBefore = planScale
		}
	}
}

// Word lists for ids shaped like Neon's; split into Sim fields by New.
const (
	adjectiveWords = "autumn billowing bitter black blue bold broad cold cool crimson curly damp dark dawn delicate divine dry empty falling fancy flat floral fragrant frosty gentle green hidden holy icy jolly late lingering little lively long lucky misty morning muddy nameless noisy odd old orange patient plain polished proud purple quiet rapid raspy red restless rough round royal shiny shrill shy silent small snowy soft solitary sparkling spring square steep still summer super sweet throbbing tight tiny twilight wandering weathered white wild winter wispy withered yellow young"
	nounWords      = "art band bar base bird block boat bonus bread breeze brook bush butterfly cake cell cherry cloud credit darkness dawn dew disk dream dust feather field fire firefly flower fog forest frog frost glade glitter grass hall hat haze heart hill king lab lake leaf limit math meadow mode moon morning mountain mouse mud night paper pine poetry pond queen rain recipe resonance rice river salad scene sea shadow shape silence sky smoke snow snowflake sound star sun sunset surf term thunder tooth tree truth union unit violet voice water waterfall wave wildflower wind wood"
)

// name draws an id shaped like Neon's ("adjective-noun-12345678"), with an optional prefix.
func (s *Sim) name(a, b, salt uint64, prefix string) string {
	r := s.rnd(a, b, salt)
	buf := make([]byte, 0, 40)
	buf = append(buf, prefix...)
	buf = append(buf, s.adjectives[r%uint64(len(s.adjectives))]...)
	buf = append(buf, '-')
	buf = append(buf, s.nouns[(r>>16)%uint64(len(s.nouns))]...)
	buf = append(buf, '-')
	digits := (r >> 32) % 100_000_000
	d := strconv.AppendUint(nil, digits, 10)
	for i := len(d); i < 8; i++ {
		buf = append(buf, '0')
	}
	buf = append(buf, d...)
	return string(buf)
}

// mix64 is splitmix64's finalizer: a fast, well-mixed bijection on 64 bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rnd is the simulator's only source of randomness: a hash of the seed and three keys.
func (s *Sim) rnd(a, b, salt uint64) uint64 {
	return mix64(s.seed ^ mix64(a*0x9e3779b97f4a7c15^mix64(b+salt*0xd1b54a32d192ed03)))
}

// unit maps 64 random bits to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) * (1.0 / (1 << 53)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
