package sim

import (
	"math"
	"time"
)

// Quota is a project's settings.quota; 0 means unlimited. The first four are per billing period;
// LogicalSizeBytes is stored but not enforced.
type Quota struct {
	ActiveTimeSeconds  int64
	ComputeTimeSeconds int64
	WrittenDataBytes   int64
	DataTransferBytes  int64
	LogicalSizeBytes   int64
}

func (q Quota) limits() bool {
	return q.ActiveTimeSeconds > 0 || q.ComputeTimeSeconds > 0 || q.WrittenDataBytes > 0 || q.DataTransferBytes > 0
}

func (q Quota) reached(c *Counters) bool {
	return (q.ActiveTimeSeconds > 0 && c.ActiveTimeSeconds >= q.ActiveTimeSeconds) ||
		(q.ComputeTimeSeconds > 0 && c.ComputeTimeSeconds >= q.ComputeTimeSeconds) ||
		(q.WrittenDataBytes > 0 && c.WrittenDataBytes >= q.WrittenDataBytes) ||
		(q.DataTransferBytes > 0 && c.DataTransferBytes >= q.DataTransferBytes)
}

// Counters are a project's usage in its current billing period, as GET /projects/{id} reports.
type Counters struct {
	ActiveTimeSeconds    int64
	ComputeTimeSeconds   int64
	WrittenDataBytes     int64
	DataTransferBytes    int64 // public network transfer
	DataStorageBytesHour int64
}

func (c *Counters) add(v *[numMetrics]int64) {
	c.ActiveTimeSeconds += v[mActiveTimeSeconds]
	c.ComputeTimeSeconds += v[mComputeTimeSeconds]
	c.WrittenDataBytes += v[mWrittenDataBytes]
	c.DataTransferBytes += v[mPublicNetworkTransferBytes]
	c.DataStorageBytesHour += v[mDataStorageBytesHour]
}

// ProjectState is everything the simulator knows about a project at the clock's current time.
type ProjectState struct {
	ID        string
	OrgID     string
	Name      string
	Plan      string // plan of the current billing period
	Profile   string // idle, steady, bursty or runaway
	CreatedAt time.Time
	// PlanChangedAt is the mid-month plan change, zero if none.
	PlanChangedAt             time.Time
	PeriodStart, PeriodEnd    time.Time
	Quota                     Quota
	Counters                  Counters
	QuotaSuspended            bool // computes cannot start until the quota is raised or the period ends
	DefaultEndpointSettings   EndpointSettings
	Endpoints                 []EndpointState
	Operations                []Operation
	HistoryRetentionSeconds   int32
	ComputeLastActive         time.Time // zero if no activity in the last 168 h
	SyntheticStorageSizeBytes int64
	ChildBranches             int // extra_branches_month grows by this many branch-hours per hour
}

// EndpointSettings are autoscaling limits (compute units) and the suspend timeout (seconds; 0 =
// Neon's default of 300, -1 = never).
type EndpointSettings struct {
	MinCU, MaxCU          float64
	SuspendTimeoutSeconds int64
}

// EndpointState is one compute endpoint.
type EndpointState struct {
	ID       string
	BranchID string
	Type     string // read_write or read_only
	Active   bool   // current_state "active" (else "idle")
	Disabled bool
	EndpointSettings
}

// Operation is one operation a mutation created.
type Operation struct {
	ID         string
	Action     string
	Status     string // at the clock's current time
	EndpointID string
	CreatedAt  time.Time
}

// pstate is the mutable state of a project something happened to; projects without one are
// exactly as their seed describes.
type pstate struct {
	ver         int // bumped by every change that can move a quota schedule
	quota       Quota
	quotaEvents []quotaEvent
	eps         []epState
	off         []change // every endpoint disabled
	caps        []change // read_write endpoint's max CU
	sched       map[int64]schedule
	ops         []opRecord
	opSeq       uint64
	defaults    EndpointSettings
	name        string
	retention   int32
	updated     int64
}

type quotaEvent struct {
	at int64
	q  Quota
}

type schedule struct {
	ver     int
	changes []change
}

type epState struct {
	EndpointSettings
	disabled    bool
	suspendedAt int64 // last manual suspend, unix seconds
	wakeUntil   int64 // a wake keeps the compute active until then
	wokeAt      int64 // start of the last wake (a connection or a patch), unix seconds
	updated     int64
	name        string
}

// idleAfter is how long a woken compute stays up without load.
func (e *epState) idleAfter() int64 {
	switch t := e.SuspendTimeoutSeconds; {
	case t == 0:
		return 300
	case t < 0:
		return 10 * 365 * 86400
	default:
		return t
	}
}

type opRecord struct {
	id       string
	action   string
	endpoint int   // -1 for none
	created  int64 // unix nanoseconds
	first    string
}

// change is a step in a piecewise-constant project state: the API shows it from sec on, and it
// affects the usage of hours from hour on (the next hour boundary, so that hours that may have
// been reported already never change).
type change struct {
	sec  int64
	hour int64
	on   bool
	val  float64
}

func lastAt(l []change, h int64) (change, bool) {
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].hour <= h {
			return l[i], true
		}
	}
	return change{}, false
}

func lastAtSec(l []change, t int64) (change, bool) {
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].sec <= t {
			return l[i], true
		}
	}
	return change{}, false
}

// view is the part of a project's state that shapes its hourly usage over some range of hours.
type view struct {
	caps, off, susp []change
}

// at returns the compute cap (0 = none) and whether computes were off in hour h.
func (v *view) at(h int64) (cuCap float64, off bool) {
	if len(v.caps) > 0 {
		if c, ok := lastAt(v.caps, h); ok {
			cuCap = c.val
		}
	}
	if len(v.off) > 0 {
		if c, ok := lastAt(v.off, h); ok && c.on {
			off = true
		}
	}
	if len(v.susp) > 0 {
		if c, ok := lastAt(v.susp, h); ok && c.on {
			off = true
		}
	}
	return cuCap, off
}

// viewLocked returns the state shaping hours [fromH, toH). The slices are append-only, so the
// view stays valid after the lock is released.
func (s *Sim) viewLocked(p *project, fromH, toH int64) view {
	st := s.states[p.idx]
	if st == nil {
		return view{}
	}
	v := view{caps: st.caps, off: st.off}
	if len(st.quotaEvents) == 0 || fromH >= toH {
		return v
	}
	t := max(fromH*3600, s.periodAt(p, st.quotaEvents[0].at).start)
	for pr := s.periodAt(p, t); pr.start < toH*3600; pr = s.periodAt(p, pr.end) {
		v.susp = append(v.susp, change{sec: pr.start, hour: ceilDiv(pr.start, 3600)})
		v.susp = append(v.susp, s.scheduleLocked(p, st, pr)...)
	}
	return v
}

// scheduleLocked derives a period's quota suspensions by walking its hours: counters restart at
// the period start; a quota change is judged against the counters of the complete hours before
// it; without a change, the project is suspended from the hour boundary after its counters reach
// the quota. Suspended hours have no compute usage, so counters stop growing. The schedule also
// covers future hours, which are as deterministic as past ones; a later change re-derives it,
// and since changes only ever happen at the clock's current time, hours before it stay as they were.
func (s *Sim) scheduleLocked(p *project, st *pstate, pr period) []change {
	if c, ok := st.sched[pr.start]; ok && c.ver == st.ver {
		return c.changes
	}
	ev := st.quotaEvents
	q, i := Quota{}, 0
	for i < len(ev) && ev[i].at < pr.start {
		q = ev[i].q
		i++
	}
	var out []change
	if q.limits() || (i < len(ev) && ev[i].at < pr.end) {
		h0 := max(ceilDiv(pr.start, 3600), s.histHour)
		h1 := ceilDiv(pr.end, 3600)
		susp := false
		var c Counters
		var vals [numMetrics]int64
		base := view{caps: st.caps, off: st.off}
		judge := func(e quotaEvent) {
			q = e.q
			if want := q.limits() && q.reached(&c); want != susp {
				susp = want
				out = append(out, change{sec: e.at, hour: ceilDiv(e.at, 3600), on: want})
			}
		}
		for h := h0; h < h1; h++ {
			for ; i < len(ev) && ev[i].at < pr.end && ev[i].at < (h+1)*3600; i++ {
				judge(ev[i])
			}
			cuCap, off := base.at(h)
			if c, ok := lastAt(out, h); ok && c.on {
				off = true
			}
			s.baseHour(p, h, cuCap, off, &vals)
			c.add(&vals)
			s.caveat(p, &c)
			if !susp && h+1 < h1 && q.limits() && q.reached(&c) {
				susp = true
				out = append(out, change{sec: (h + 1) * 3600, hour: h + 1, on: true})
			}
		}
		for ; i < len(ev) && ev[i].at < pr.end; i++ {
			judge(ev[i])
		}
	}
	if st.sched == nil {
		st.sched = map[int64]schedule{}
	}
	st.sched[pr.start] = schedule{ver: st.ver, changes: out}
	return out
}

// quotaSuspendedLocked reports whether the project's computes are held by its quota at t.
func (s *Sim) quotaSuspendedLocked(p *project, st *pstate, t int64) bool {
	if st == nil || len(st.quotaEvents) == 0 {
		return false
	}
	c, ok := lastAtSec(s.scheduleLocked(p, st, s.periodAt(p, t)), t)
	return ok && c.on
}

// stateLocked returns the project's mutable state, creating it from the seed on first use.
func (s *Sim) stateLocked(p *project) *pstate {
	if st := s.states[p.idx]; st != nil {
		return st
	}
	st := &pstate{
		defaults:  s.baseDefaults(p),
		name:      p.id,
		retention: 86400,
		updated:   p.created,
	}
	st.eps = make([]epState, p.endpoints)
	for e := range st.eps {
		st.eps[e] = s.baseEndpoint(p, e)
	}
	s.states[p.idx] = st
	return st
}

// endpointsLocked returns the project's endpoints (a copy when it has no state yet).
func (s *Sim) endpointsLocked(p *project) []epState {
	if st := s.states[p.idx]; st != nil {
		return st.eps
	}
	eps := make([]epState, p.endpoints)
	for e := range eps {
		eps[e] = s.baseEndpoint(p, e)
	}
	return eps
}

func (s *Sim) baseDefaults(p *project) EndpointSettings {
	return EndpointSettings{MinCU: 0.25, MaxCU: cuStep(p.cu * 1.3)}
}

func (s *Sim) baseEndpoint(p *project, e int) epState {
	ep := epState{EndpointSettings: s.baseDefaults(p), updated: p.created}
	switch r := s.rnd(uint64(p.idx), uint64(e), saltEndpoint) % 10; {
	case r < 5:
		ep.SuspendTimeoutSeconds = 0
	case r < 7:
		ep.SuspendTimeoutSeconds = 300
	case r < 9:
		ep.SuspendTimeoutSeconds = 3600
	default:
		ep.SuspendTimeoutSeconds = -1
	}
	return ep
}

// cuStep rounds up to a compute size Neon offers.
func cuStep(cu float64) float64 {
	for _, c := range [...]float64{0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16} {
		if c >= cu {
			return c
		}
	}
	return 16
}

func (s *Sim) endpointID(p *project, e int) string {
	return s.name(uint64(p.idx), 1000+uint64(e), saltEndpoint, "ep-")
}

// branchID is the default branch for b = 0, else child branch b.
func (s *Sim) branchID(p *project, b int) string {
	return s.name(uint64(p.idx), 2000+uint64(b), saltEndpoint, "br-")
}

// endpointBranch places endpoint 0 (read_write) on the default branch, others read_write on a
// child branch when the project has some, else read_only on the default branch.
func (s *Sim) endpointBranch(p *project, e int) (branch, typ string) {
	switch {
	case e == 0:
		return s.branchID(p, 0), "read_write"
	case int(p.children) >= e:
		return s.branchID(p, e), "read_write"
	default:
		return s.branchID(p, 0), "read_only"
	}
}

// endpointActive derives current_state: a compute runs when it is neither quota-held nor
// disabled, and either was woken recently or its profile has load this hour (the primary on
// any load, others on heavy load) and it was not suspended by hand during this hour.
func (s *Sim) endpointActive(p *project, e int, ep *epState, now int64, held bool) bool {
	if held || ep.disabled {
		return false
	}
	if now < ep.wakeUntil {
		return true
	}
	h := floorDiv(now, 3600)
	if ep.suspendedAt != 0 && ep.suspendedAt >= h*3600 && ep.suspendedAt <= now {
		return false
	}
	a := s.activeSeconds(p, h)
	if e == 0 {
		return a > 0
	}
	return a >= 1800
}

// counters sums the final hourly values of the complete hours of the current period.
func (s *Sim) counters(p *project, v *view, pr period, now int64) Counters {
	var c Counters
	var vals [numMetrics]int64
	for h := max(ceilDiv(pr.start, 3600), s.histHour); h < floorDiv(now, 3600); h++ {
		cuCap, off := v.at(h)
		s.baseHour(p, h, cuCap, off, &vals)
		c.add(&vals)
	}
	s.caveat(p, &c)
	return c
}

// computeCounters is counters with only ActiveTimeSeconds and ComputeTimeSeconds, what a
// project list item reports (active_time, cpu_used_sec); ver is the project's state version
// (0 without state). It skips the storage and transfer metrics and keeps each project's sums
// in s.ctr, so listing a big fleet again only adds the hours completed since: complete hours
// never change, as every state change takes effect at the next hour boundary.
func (s *Sim) computeCounters(p *project, v *view, pr period, now int64, ver int) Counters {
	h0, h1 := max(ceilDiv(pr.start, 3600), s.histHour), floorDiv(now, 3600)
	s.ctrMu.Lock()
	e := s.ctr[p.idx]
	s.ctrMu.Unlock()
	if int64(e.from) != h0 || int64(e.through) > h1 || e.ver != int32(ver) || e.through == 0 {
		e = ctrEntry{from: int32(h0), through: int32(h0), ver: int32(ver)}
	}
	for h := int64(e.through); h < h1; h++ {
		cuCap, off := v.at(h)
		active, cu := s.compute(p, h, cuCap, off)
		if active > 0 {
			e.active += uint32(active)
			e.compute += uint32(math.Round(active * cu * s.utilization(p, h)))
		}
	}
	e.through = int32(max(h0, h1))
	s.ctrMu.Lock()
	s.ctr[p.idx] = e
	s.ctrMu.Unlock()
	c := Counters{ActiveTimeSeconds: int64(e.active), ComputeTimeSeconds: int64(e.compute)}
	s.caveat(p, &c)
	return c
}

// ctrEntry is computeCounters' running sum of a project's period: hours [from, through) in
// unix hours, at state version ver. A period is at most 744 hours, so even at Neon's largest
// compute (56 CU) its sums fit in 32 bits: 20 bytes a project.
type ctrEntry struct {
	from, through, ver int32
	active, compute    uint32
}

// caveat zeroes the counters Neon leaves at 0 on Launch (Config.LaunchCaveat).
func (s *Sim) caveat(p *project, c *Counters) {
	if s.cfg.LaunchCaveat && p.org == orgLaunch {
		c.ActiveTimeSeconds, c.ComputeTimeSeconds, c.DataTransferBytes = 0, 0, 0
	}
}

// lastActive is when a compute of the project last ran, within 168 h (0 if none): now while
// one runs; else the latest of the end of a wake (a connection or a patch; a manual suspend
// ends it early) and the end of the last hour whose load ran a compute (in the current hour,
// up to a manual suspend, else the hour's start).
func (s *Sim) lastActive(p *project, v *view, eps []epState, held bool, now int64) int64 {
	last := int64(0)
	for e := range eps {
		ep := &eps[e]
		if s.endpointActive(p, e, ep, now, held) {
			return now
		}
		if ep.wokeAt != 0 {
			end := ep.wakeUntil
			if end == 0 && ep.suspendedAt >= ep.wokeAt {
				end = ep.suspendedAt
			}
			last = max(last, min(end, now))
		}
	}
	h := floorDiv(now, 3600)
	if _, off := v.at(h); !off && s.activeSeconds(p, h) > 0 && len(eps) > 0 {
		end := h * 3600
		if t := eps[0].suspendedAt; t >= h*3600 && t <= now {
			end = t
		}
		return max(last, end)
	}
	for k := h - 1; k >= max(s.histHour, h-168); k-- {
		if _, off := v.at(k); !off && s.activeSeconds(p, k) > 0 {
			return max(last, (k+1)*3600)
		}
	}
	if last < now-168*3600 {
		return 0
	}
	return last
}

func (s *Sim) opStatus(o *opRecord, nowNano int64) string {
	if nowNano < o.created+int64(s.cfg.OperationDelay) {
		return "running"
	}
	return "finished"
}

// busyLocked reports whether an operation of the project is still running (mutations get 423).
func (s *Sim) busyLocked(st *pstate, nowNano int64) bool {
	if st == nil {
		return false
	}
	for i := len(st.ops) - 1; i >= 0; i-- {
		if s.opStatus(&st.ops[i], nowNano) == "running" {
			return true
		}
	}
	return false
}

// addOpLocked records an operation; at most the last 200 of a project are kept.
func (s *Sim) addOpLocked(p *project, st *pstate, action string, endpoint int, nowNano int64, first string) opRecord {
	st.opSeq++
	hi, lo := s.rnd(uint64(p.idx), st.opSeq, saltOp), s.rnd(uint64(p.idx), st.opSeq, saltOp+100)
	o := opRecord{id: string(appendUUID(nil, hi, lo)), action: action, endpoint: endpoint, created: nowNano, first: first}
	if len(st.ops) >= 200 {
		st.ops = append(st.ops[:0], st.ops[1:]...)
	}
	st.ops = append(st.ops, o)
	return o
}

// Project returns the state of a project at the clock's current time.
func (s *Sim) Project(projectID string) (ProjectState, bool) {
	idx, ok := s.byID[projectID]
	if !ok {
		return ProjectState{}, false
	}
	p := &s.projects[idx]
	nowT := s.now()
	now := nowT.Unix()
	pr := s.periodAt(p, now)
	s.mu.Lock()
	st := s.states[idx]
	v := s.viewLocked(p, max(ceilDiv(pr.start, 3600), s.histHour)-168, floorDiv(now, 3600)+1)
	held := s.quotaSuspendedLocked(p, st, now)
	out := ProjectState{
		ID:             p.id,
		OrgID:          s.orgs[p.org].id,
		Name:           p.id,
		Plan:           planName(pr.plan),
		Profile:        profileName(p.profile),
		CreatedAt:      time.Unix(p.created, 0).UTC(),
		PeriodStart:    time.Unix(pr.start, 0).UTC(),
		PeriodEnd:      time.Unix(pr.end, 0).UTC(),
		QuotaSuspended: held,
		ChildBranches:  int(p.children),
	}
	if p.planChange != 0 {
		out.PlanChangedAt = time.Unix(p.planChange, 0).UTC()
	}
	out.DefaultEndpointSettings = s.baseDefaults(p)
	out.HistoryRetentionSeconds = 86400
	if st != nil {
		out.Quota, out.Name = st.quota, st.name
		out.DefaultEndpointSettings, out.HistoryRetentionSeconds = st.defaults, st.retention
		for i := range st.ops {
			o := &st.ops[i]
			op := Operation{ID: o.id, Action: o.action, Status: s.opStatus(o, nowT.UnixNano()), CreatedAt: time.Unix(0, o.created).UTC()}
			if o.endpoint >= 0 {
				op.EndpointID = s.endpointID(p, o.endpoint)
			}
			out.Operations = append(out.Operations, op)
		}
	}
	eps := append([]epState(nil), s.endpointsLocked(p)...)
	for e, ep := range eps {
		branch, typ := s.endpointBranch(p, e)
		out.Endpoints = append(out.Endpoints, EndpointState{
			ID: s.endpointID(p, e), BranchID: branch, Type: typ,
			Active: s.endpointActive(p, e, &ep, now, held), Disabled: ep.disabled,
			EndpointSettings: ep.EndpointSettings,
		})
	}
	s.mu.Unlock()
	out.Counters = s.counters(p, &v, pr, now)
	if t := s.lastActive(p, &v, eps, held, now); t != 0 {
		out.ComputeLastActive = time.Unix(t, 0).UTC()
	}
	var vals [numMetrics]int64
	cuCap, off := v.at(floorDiv(now, 3600))
	s.baseHour(p, floorDiv(now, 3600), cuCap, off, &vals)
	out.SyntheticStorageSizeBytes = vals[mSyntheticStorageSizeBytes]
	return out, true
}
