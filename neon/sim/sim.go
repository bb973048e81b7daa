package sim

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultProjects         = 100
	DefaultConsumptionBurst = 1
	DefaultGeneralBurst     = 10
	// DefaultHistory is how far before Now() the first hour with usage lies.
	DefaultHistory = 40 * 24 * time.Hour
)

// Config configures a simulated fleet. Everything the simulator reports is a deterministic
// function of Seed, the clock and the calls made to it.
type Config struct {
	Projects int              // total projects across all orgs (default 100, at least 4)
	Seed     int64            // everything is a deterministic function of Seed
	Now      func() time.Time // the simulator's clock (default time.Now); tests pass a fake clock
	// APIKey, if non-empty, is the only accepted "Authorization: Bearer <APIKey>" (401 otherwise).
	APIKey string
	// ConsumptionRatePerMin is the token bucket shared by both consumption routes; 0 = unlimited.
	ConsumptionRatePerMin float64
	ConsumptionBurst      int // default 1
	// GeneralRatePerMin is the bucket for all other API routes; 0 = unlimited.
	GeneralRatePerMin float64
	GeneralBurst      int // default 10
	// OperationDelay is how long operations stay "running" after creation (by the clock);
	// 0 = finished on first poll.
	OperationDelay time.Duration
	// HistoryStart is the earliest hour with usage (default Now() - 40 days, truncated to the hour).
	HistoryStart time.Time
	// LaunchCaveat models Neon API notes §6.3: the launch org's active_time_seconds,
	// compute_time_seconds and data_transfer_bytes counters stay 0, so quotas on them never
	// suspend its computes and a client connection (TryWake) starts them whatever the quota.
	LaunchCaveat bool
	// ActiveShare, when positive (at most MaxActiveShare), shapes usage like a big, mostly idle
	// fleet: about this share of all projects runs a compute in any hour, averaged over a day,
	// with a daily peak; most projects are dormant for days, a few always on (see activity.go).
	// 0 keeps the profile mix of small test fleets (idle, steady, bursty, runaway) unchanged.
	ActiveShare float64
	// RateNow is the clock of the token buckets. nil means real time, so a test with a frozen
	// Now still gets tokens back. An accelerated clock (internal/simclock) passes its Now so
	// that limits count per simulated minute; 429s then carry no Retry-After, since whole real
	// seconds mean nothing on such a clock.
	RateNow func() time.Time
}

// Org is one simulated organization.
type Org struct {
	ID     string
	Plan   string // "free", "launch", "scale" or, for the legacy org, "business"
	Legacy bool   // true when only the legacy consumption route answers
	// ProjectIDs are newest-created first, the order of every paginated listing.
	ProjectIDs []string
}

// Stats counts what the simulator served since New.
type Stats struct {
	Requests            map[string]int64 // by route template, e.g. "GET /consumption_history/v2/projects"
	ConsumptionRequests int64            // all consumption calls (both routes), including faulted ones
	Faults              int64            // injected faults
	RateLimited         int64            // 429s from the token buckets (not injected)
	// ConsumptionRateLimited are the RateLimited of the consumption bucket: ConsumptionRequests
	// minus these is what the consumption routes served or faulted.
	ConsumptionRateLimited int64
	Wakes                  int64 // requests that would wake an idle compute in real Neon
}

// Sim is a simulated Neon fleet. Its methods and handler are safe for concurrent use.
type Sim struct {
	cfg               Config
	seed              uint64
	now               func() time.Time
	rateNow           func() time.Time
	act               activity
	histHour          int64 // first hour (unix hours) with usage
	orgs              [numOrgs]orgInfo
	projects          []project // index = creation order, oldest first
	byID              map[string]int32
	handler           http.Handler
	bufs              sync.Pool // *[]byte response buffers
	adjectives, nouns []string

	ctrMu sync.Mutex
	ctr   []ctrEntry // by project index: list counters (computeCounters)

	mu         sync.Mutex // guards everything below
	states     map[int32]*pstate
	deleted    map[int32]bool // DeleteProject: project routes answer 404, the list omits them
	revisions  []revision
	faults     Faults
	faultRNG   uint64
	reqSeq     uint64
	stats      Stats
	consBucket *bucket
	genBucket  *bucket
	limited    int64 // 429s from buckets, to put Retry-After on every other one
}

// New builds the fleet described by cfg.
func New(cfg Config) (*Sim, error) {
	if cfg.Projects == 0 {
		cfg.Projects = DefaultProjects
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConsumptionBurst == 0 {
		cfg.ConsumptionBurst = DefaultConsumptionBurst
	}
	if cfg.GeneralBurst == 0 {
		cfg.GeneralBurst = DefaultGeneralBurst
	}
	var errs []error
	if cfg.Projects < numOrgs {
		errs = append(errs, fmt.Errorf("sim config: Projects = %d: need at least %d, one per org", cfg.Projects, numOrgs))
	}
	if cfg.Projects > 10_000_000 {
		errs = append(errs, fmt.Errorf("sim config: Projects = %d: at most 10,000,000", cfg.Projects))
	}
	if cfg.ConsumptionRatePerMin < 0 || math.IsNaN(cfg.ConsumptionRatePerMin) {
		errs = append(errs, fmt.Errorf("ConsumptionRatePerMin = %v: must be ≥ 0", cfg.ConsumptionRatePerMin))
	}
	if cfg.GeneralRatePerMin < 0 || math.IsNaN(cfg.GeneralRatePerMin) {
		errs = append(errs, fmt.Errorf("GeneralRatePerMin = %v: must be ≥ 0", cfg.GeneralRatePerMin))
	}
	if cfg.ConsumptionBurst < 0 {
		errs = append(errs, fmt.Errorf("ConsumptionBurst = %d: must be ≥ 0", cfg.ConsumptionBurst))
	}
	if cfg.GeneralBurst < 0 {
		errs = append(errs, fmt.Errorf("GeneralBurst = %d: must be ≥ 0", cfg.GeneralBurst))
	}
	if cfg.OperationDelay < 0 {
		errs = append(errs, fmt.Errorf("OperationDelay = %v: must be ≥ 0", cfg.OperationDelay))
	}
	act, err := newActivity(cfg.ActiveShare)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("sim config: %w", errors.Join(errs...))
	}
	now0 := cfg.Now().UTC()
	if cfg.HistoryStart.IsZero() {
		cfg.HistoryStart = now0.Add(-DefaultHistory)
	}
	cfg.HistoryStart = cfg.HistoryStart.UTC().Truncate(time.Hour)

	s := &Sim{
		cfg:      cfg,
		seed:     mix64(uint64(cfg.Seed) ^ 0x6e656f6e73696d), // "neonsim"
		now:      cfg.Now,
		rateNow:  cfg.RateNow,
		act:      act,
		histHour: floorDiv(cfg.HistoryStart.Unix(), 3600),
		states:   map[int32]*pstate{},
		deleted:  map[int32]bool{},
		stats:    Stats{Requests: map[string]int64{}},
	}
	if s.rateNow == nil {
		s.rateNow = time.Now
	}
	s.adjectives, s.nouns = strings.Fields(adjectiveWords), strings.Fields(nounWords)
	s.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	if cfg.ConsumptionRatePerMin > 0 {
		s.consBucket = newBucket(cfg.ConsumptionRatePerMin, cfg.ConsumptionBurst)
	}
	if cfg.GeneralRatePerMin > 0 {
		s.genBucket = newBucket(cfg.GeneralRatePerMin, cfg.GeneralBurst)
	}
	s.buildFleet(cfg.Projects, now0.Unix())
	s.ctr = make([]ctrEntry, cfg.Projects)
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API under /api/v2/... and debug routes under /debug/....
func (s *Sim) Handler() http.Handler { return s.handler }

// Orgs lists the four organizations.
func (s *Sim) Orgs() []Org {
	out := make([]Org, 0, numOrgs)
	for i := range s.orgs {
		o := &s.orgs[i]
		ids := make([]string, len(o.projects))
		for j, idx := range o.projects {
			ids[j] = s.projects[idx].id
		}
		out = append(out, Org{ID: o.id, Plan: o.plan, Legacy: i == orgLegacy, ProjectIDs: ids})
	}
	return out
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests = make(map[string]int64, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		out.Requests[k] = v
	}
	return out
}

func (s *Sim) nowSec() int64 { return s.now().Unix() }

// Value is the ground truth: exactly what an hourly consumption call would report right now for
// the bucket starting at hourStart (truncated to the hour), or 0 when the bucket or metric is
// absent. Metrics are those of the project's route: the legacy org's projects have the seven
// legacy metrics, all others the eight v2 metrics (free projects too, though their API is 403).
func (s *Sim) Value(projectID, metric string, hourStart time.Time) int64 {
	idx, ok := s.byID[projectID]
	if !ok {
		return 0
	}
	m, ok := metricByName(metric)
	if !ok {
		return 0
	}
	p := &s.projects[idx]
	if isLegacyMetric(m) != (p.org == orgLegacy) {
		return 0
	}
	h := floorDiv(hourStart.Unix(), 3600)
	now := s.nowSec()
	s.mu.Lock()
	v := s.viewLocked(p, h, h+1)
	revs := s.revisions
	s.mu.Unlock()
	var out [numMetrics]int64
	s.reportedHour(p, &v, revs, h, now, &out)
	return out[m]
}

// RouteMetrics lists the metric names of a project's consumption route, sorted: the eight v2
// metrics, or the seven legacy ones for the legacy org's projects; nil for an unknown project.
func (s *Sim) RouteMetrics(projectID string) []string {
	idx, ok := s.byID[projectID]
	if !ok {
		return nil
	}
	lo, hi := s.routeMetrics(&s.projects[idx])
	out := make([]string, 0, hi-lo)
	for m := lo; m < hi; m++ {
		out = append(out, m.String())
	}
	slices.Sort(out)
	return out
}

func (s *Sim) routeMetrics(p *project) (lo, hi metric) {
	if p.org == orgLegacy {
		return firstLegacy, numMetrics
	}
	return 0, firstLegacy
}

// HourlyTruth is Value for every metric of the project's route (RouteMetrics' order) and every
// hour of [from, to) (truncated to the hour), computed once per hour instead of once per value:
// fn gets each hour, oldest first, with values it must not keep (the slice is reused). It
// reports false for an unknown project. Verifying a big fleet against ClickHouse uses it.
func (s *Sim) HourlyTruth(projectID string, from, to time.Time, fn func(hour time.Time, values []int64)) bool {
	idx, ok := s.byID[projectID]
	if !ok {
		return false
	}
	p := &s.projects[idx]
	lo, hi := s.routeMetrics(p)
	order := make([]metric, 0, hi-lo)
	for m := lo; m < hi; m++ {
		order = append(order, m)
	}
	slices.SortFunc(order, func(a, b metric) int { return strings.Compare(a.String(), b.String()) })
	h0, h1 := floorDiv(from.Unix(), 3600), floorDiv(to.Unix(), 3600)
	now := s.nowSec()
	s.mu.Lock()
	v := s.viewLocked(p, h0, h1)
	revs := s.revisions
	s.mu.Unlock()
	var all [numMetrics]int64
	values := make([]int64, len(order))
	for h := h0; h < h1; h++ {
		s.reportedHour(p, &v, revs, h, now, &all)
		for i, m := range order {
			values[i] = all[m]
		}
		fn(time.Unix(h*3600, 0).UTC(), values)
	}
	return true
}

// Ran reports whether a compute of the project ran during the hour starting at hourStart
// (truncated to the hour): whether its active seconds, which every compute metric of that hour
// scales, are positive. False outside the history and for an unknown project.
func (s *Sim) Ran(projectID string, hourStart time.Time) bool {
	idx, ok := s.byID[projectID]
	if !ok {
		return false
	}
	p := &s.projects[idx]
	h := floorDiv(hourStart.Unix(), 3600)
	if h < s.histHour {
		return false
	}
	s.mu.Lock()
	v := s.viewLocked(p, h, h+1)
	s.mu.Unlock()
	cuCap, off := v.at(h)
	active, _ := s.compute(p, h, cuCap, off)
	return active > 0
}

// TryWake simulates a client connection: it starts every compute of the project that is
// neither disabled nor quota-suspended, and returns whether a compute runs afterwards.
func (s *Sim) TryWake(projectID string) bool {
	idx, ok := s.byID[projectID]
	if !ok {
		return false
	}
	p := &s.projects[idx]
	now := s.nowSec()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quotaSuspendedLocked(p, s.states[idx], now) {
		return false
	}
	st := s.stateLocked(p)
	woke := false
	for i := range st.eps {
		ep := &st.eps[i]
		if ep.disabled {
			continue
		}
		ep.wakeUntil, ep.wokeAt = now+ep.idleAfter(), now
		woke = true
	}
	return woke
}

// DeleteProject deletes a project as Neon's DELETE /projects/{id} would for the routes of one
// project (404 from then on) and the project list (omitted). Consumption history keeps
// reporting its past hours. It reports whether the project existed.
func (s *Sim) DeleteProject(projectID string) bool {
	idx, ok := s.byID[projectID]
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[idx] = true
	return true
}
