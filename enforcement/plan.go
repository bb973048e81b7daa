// Package enforcement keeps every Neon project inside its plan: it tightens Neon's own quota and
// default compute settings to what the plan allows, throttles projects over a soft limit,
// suspends projects over a hard limit, restores them when a new period starts, the plan is
// upgraded, the limit raised or an operator releases them, and records every decision and
// action. README.md states the model.
package enforcement

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// Level is how far a project is into its plan's limits.
type Level string

// Levels, worst last.
const (
	LevelOK      Level = "ok"
	LevelWarning Level = "warning" // at or above the first warning threshold (80 % by default)
	LevelOver    Level = "over"    // at or above the limit
)

func (l Level) rank() int {
	switch l {
	case LevelWarning:
		return 1
	case LevelOver:
		return 2
	}
	return 0
}

// Status is what enforcement does to a project.
type Status string

// Statuses.
const (
	StatusNormal    Status = "normal"    // tightened to the plan; nothing more
	StatusThrottled Status = "throttled" // over a soft limit: max CU down to the plan's floor
	StatusSuspended Status = "suspended" // over a hard limit: quota holds every compute
	StatusReleased  Status = "released"  // an operator lifted enforcement for this period
)

// HoldReason says why enforcement holds back what the limits call for. The values are stored
// in audit rows and shown in reports and metrics.
type HoldReason string

// Hold reasons.
const (
	HeldUnknownPlan  HoldReason = "unknown plan"       // the catalog lacks the plan in force: nothing is done
	HeldNeverSuspend HoldReason = "never-suspend list" // Policy.NeverSuspend: alerts only
	HeldStaleData    HoldReason = "stale data"         // the collector is behind: no new enforcement, no restore on usage
	HeldGrace        HoldReason = "grace"              // over for less than Policy.Grace
	HeldBreaker      HoldReason = "circuit breaker"    // the cycle reached its cap of newly enforced projects
)

// Mode says whether planned actions reach Neon.
type Mode string

// Modes.
const (
	ModeDryRun  Mode = "dry-run"
	ModeEnforce Mode = "enforce"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeDryRun, ModeEnforce:
		return Mode(s), nil
	}
	return "", fmt.Errorf("enforcement mode %q: want dry-run or enforce", s)
}

// Defaults of Policy.
const (
	DefaultGrace             = 15 * time.Minute
	DefaultHysteresisPercent = 5
	DefaultStaleAfter        = 3 * time.Hour
	DefaultMaxActions        = 100
	DefaultMaxPercent        = 5.0
	DefaultDriftReads        = 100
	DefaultMaxReads          = 2000
	// ActiveTimeSuspendQuota is the quota that suspends a project: Neon holds every compute once
	// the period's active time reaches it (neon-api.md §6.1).
	ActiveTimeSuspendQuota = 1
)

// Policy is the operator's safety settings.
type Policy struct {
	Mode Mode
	// NeverSuspend lists projects that are never suspended nor throttled (alerts still fire).
	NeverSuspend map[string]bool
	// Grace is how long a project must stay over a hard or soft limit before it is suspended or
	// throttled, so a project that touches the line in one collection does not flap.
	Grace time.Duration
	// HysteresisPercent is how many points below a threshold usage must fall to leave a level.
	HysteresisPercent int
	// StaleAfter bounds the age of the collector's data on a project (now − its progress, else
	// its org's hourly watermark): beyond it, unless its computes did not run since, no project
	// is newly suspended or throttled, nor restored on usage.
	StaleAfter time.Duration
	// MaxActions and MaxPercent are the circuit breaker: at most this many projects, and at most
	// this percentage of the fleet, are newly suspended or throttled in one cycle, the most over
	// their limits first.
	MaxActions int
	MaxPercent float64
	// BreakerLatch keeps a tripped breaker tripped: after the cycle that tripped it, no project
	// is newly suspended or throttled until an operator acknowledges it (AckBreaker). A spike of
	// bad data then costs at most one cycle's cap, not a cap every cycle.
	BreakerLatch bool
	// ThrottleIdle patches idle computes too when throttling; each such patch wakes the compute
	// and is counted. Off by default: idle computes are throttled when next seen active.
	ThrottleIdle bool
	// DriftReads is how many projects without a pending change have their computes read per
	// cycle, least recently read first, to find computes changed by hand (settings changed by
	// hand show in the project list every cycle).
	DriftReads int
	// MaxReads bounds the projects given Neon calls of their own per cycle, the most urgent
	// first: a read of their computes, a GET where no project list shows them, and in enforce
	// mode a change of their settings. The project lists that observe the whole fleet, and what
	// a dry run only plans, are not counted.
	MaxReads int
}

// Desired is everything known about a project without asking Neon.
type Desired struct {
	ProjectID string
	OrgID     string
	// Plan is the plan in force now; nil when the catalog does not know it (nothing is done).
	Plan *plans.Plan
	// Usage is period-to-date usage by metric: the sum of hourly values (for size metrics the
	// largest hour).
	Usage map[string]uint64
	// PeriodStart is the start of the plan period usage is counted from.
	PeriodStart time.Time
	// Fresh is false when the collector's data for the project is older than the bound and its
	// computes ran since (freshness.of, load.go).
	Fresh bool
	// Last is what enforcement remembered from earlier cycles (zero value: nothing).
	Last Memory
}

// Memory is the persisted state of a project between cycles.
type Memory struct {
	Known       bool
	PeriodStart time.Time
	Plan        string
	Level       Level
	OverSince   time.Time
	// Released is true when an operator released the project for PeriodStart's period.
	Released bool
	Seen
}

// Observed is a project's actual state in Neon.
type Observed struct {
	Known     bool
	Quota     neon.Quota
	Defaults  neon.DefaultEndpointSettings
	Endpoints []neon.Endpoint
	// SettingsOnly is set when only the settings are known (from the project list): the computes
	// were not read, so nothing is planned for them and nothing learnt of them.
	SettingsOnly bool
}

// Finding is one limit's evaluation.
type Finding struct {
	Metric string
	Kind   plans.LimitKind
	Usage  uint64
	Limit  uint64
	Level  Level
}

// Severity is how far usage is into the limit: usage ÷ limit, 1 at the limit. The breaker and
// the alert series cap take the most severe projects first.
func (f Finding) Severity() float64 {
	if f.Limit == 0 {
		return 0
	}
	return float64(f.Usage) / float64(f.Limit)
}

// Target is the Neon state a project should have.
type Target struct {
	Status Status
	// Quota holds the period quotas (LogicalSizeBytes is never managed and is kept as observed).
	Quota neon.Quota
	// Defaults are the default endpoint settings; zero fields are not managed.
	Defaults neon.DefaultEndpointSettings
	// EndpointMaxCU caps running computes' max CU while throttled; 0 otherwise.
	EndpointMaxCU float64
	// RestoreMaxCU is the plan's max CU (0 when unmanaged): running computes above it are capped
	// to it, and a throttled compute enforcement has no prior range of gets it back.
	RestoreMaxCU float64
}

// Fingerprint is the target as short, stable text (stored as Memory.Applied, shown in audits).
func (t Target) Fingerprint() string {
	return fmt.Sprintf("%s q=%d,%d,%d,%d d=%g,%g,%d", t.Status, t.Quota.ActiveTimeSeconds, t.Quota.ComputeTimeSeconds,
		t.Quota.WrittenDataBytes, t.Quota.DataTransferBytes, t.Defaults.AutoscalingLimitMinCU, t.Defaults.AutoscalingLimitMaxCU,
		t.Defaults.SuspendTimeoutSeconds)
}

// Verdict is the evaluation of a project before Neon is read: its level, target and the memory
// to persist.
type Verdict struct {
	ProjectID string
	Plan      string
	Findings  []Finding
	// Worst is the finding that decided the level (the first of the worst level).
	Worst  Finding
	Level  Level
	Target Target
	// Held says why an action the limits call for is not taken, "" when none is held back.
	Held HoldReason
	// Crossed is set when the level differs from the remembered one: an edge, audited and
	// alerted once.
	Crossed bool
	// Enforces is set when the target newly suspends or throttles (what the breaker counts).
	Enforces bool
	Next     Memory
}

// Evaluate judges a project's usage against its plan and decides its target. It is pure.
func Evaluate(d Desired, p Policy, now time.Time) Verdict {
	if d.Plan == nil {
		return Verdict{ProjectID: d.ProjectID, Level: LevelOK, Held: HeldUnknownPlan, Next: d.Last}
	}
	h := historyOf(d)
	j := judgeLimits(d, h, p.HysteresisPercent)
	v := Verdict{ProjectID: d.ProjectID, Plan: d.Plan.Name, Findings: j.findings, Worst: j.worst, Level: j.level}
	v.Next = nextMemory(d, h, j, now)
	v.Crossed = crossed(d, h, j.level)
	want, held := decideStatus(d, h, j, v.Next, p, now)
	v.Held = held
	v.Target = target(d, want, p.NeverSuspend[d.ProjectID])
	v.Enforces = (want == StatusSuspended || want == StatusThrottled) && !(h.samePeriod && h.lastStatus == want)
	return v
}

// history is what a verdict needs from the remembered state.
type history struct {
	samePeriod bool   // the memory is of the period being judged
	lastStatus Status // the status last applied (or observed), whatever its period
	// prev and prevStatus are what hysteresis starts from: the remembered level and status of
	// the same period and plan, else ok and normal (a new period or plan starts clean).
	prev       Level
	prevStatus Status
}

func historyOf(d Desired) history {
	last := d.Last
	h := history{samePeriod: last.Known && last.PeriodStart.Equal(d.PeriodStart), lastStatus: statusOf(last.Applied),
		prev: LevelOK, prevStatus: StatusNormal}
	if h.samePeriod && last.Plan == d.Plan.Name {
		h.prev, h.prevStatus = last.Level, h.lastStatus
	}
	return h
}

// judgement is what the plan's limits say of the usage.
type judgement struct {
	findings []Finding
	level    Level
	// worst is the first hard limit over, else the first soft limit over, else the first
	// finding of the worst level.
	worst              Finding
	hardOver, softOver bool
}

// judgeLimits places the usage of every limited metric, in metric order.
func judgeLimits(d Desired, h history, hysteresis int) judgement {
	j := judgement{level: LevelOK}
	var hardF, softF Finding
	for _, m := range slices.Sorted(maps.Keys(d.Plan.Limits)) {
		l := d.Plan.Limits[m]
		u, ok := d.Usage[m]
		if l.Unlimited || l.Max == 0 || !ok {
			continue
		}
		f := judgeLimit(m, l, u, h, hysteresis)
		j.findings = append(j.findings, f)
		if f.Level.rank() > j.level.rank() {
			j.level, j.worst = f.Level, f
		}
		if f.Level != LevelOver {
			continue
		}
		switch l.Kind {
		case plans.KindHard:
			if !j.hardOver {
				hardF = f
			}
			j.hardOver = true
		case plans.KindSoft:
			if !j.softOver {
				softF = f
			}
			j.softOver = true
		}
	}
	if j.hardOver {
		j.worst = hardF
	} else if j.softOver {
		j.worst = softF
	}
	return j
}

// judgeLimit places one metric's usage against its limit.
func judgeLimit(m string, l plans.Limit, u uint64, h history, hysteresis int) Finding {
	f := Finding{Metric: m, Kind: l.Kind, Usage: u, Limit: l.Max, Level: level(u, l, h.prev, hysteresis)}
	if f.Level == LevelOver && u < l.Max && !enforcedOn(l.Kind, h.prevStatus) {
		// The remembered level is the worst of all limits: hysteresis keeps a hard or soft
		// limit over only when enforcement acted on that kind, never because another limit
		// (say an alert-only one) is over, or a project inside its limits would be suspended.
		f.Level = level(u, l, LevelWarning, hysteresis)
	}
	return f
}

// nextMemory is what the cycle remembers of the project, before Neon is read.
func nextMemory(d Desired, h history, j judgement, now time.Time) Memory {
	last := d.Last
	next := Memory{Known: true, PeriodStart: d.PeriodStart, Plan: d.Plan.Name, Level: j.level, Seen: last.Seen}
	if h.samePeriod {
		next.Released = last.Released
	}
	// OverSince is when an enforced (hard or soft) limit went over: grace must not count time
	// spent over an alert-only limit.
	if j.hardOver || j.softOver {
		next.OverSince = now
		if h.samePeriod && last.Level == LevelOver && !last.OverSince.IsZero() {
			next.OverSince = last.OverSince
		}
	}
	return next
}

// crossed reports an edge: the level differs from the remembered one of the same period and plan.
func crossed(d Desired, h history, l Level) bool {
	last := d.Last
	if !last.Known && l == LevelOK {
		return false // nothing to say about a project seen for the first time within limits
	}
	return !last.Known || !h.samePeriod || last.Level != l || last.Plan != d.Plan.Name
}

// decideStatus is the status the limits call for, unless something holds it back.
func decideStatus(d Desired, h history, j judgement, next Memory, p Policy, now time.Time) (Status, HoldReason) {
	switch {
	case next.Released:
		return StatusReleased, ""
	case j.hardOver:
		return holdEnforcement(d, h, StatusSuspended, next.OverSince, p, now)
	case j.softOver:
		return holdEnforcement(d, h, StatusThrottled, next.OverSince, p, now)
	}
	enforced := h.lastStatus == StatusSuspended || h.lastStatus == StatusThrottled
	if !d.Fresh && h.samePeriod && enforced && d.Last.Plan == d.Plan.Name {
		// Missing data looks like low usage: never restore on usage the collector has not caught
		// up with. A new period, a plan change or a release still restores.
		return h.lastStatus, HeldStaleData
	}
	return StatusNormal, ""
}

// holdEnforcement returns want (suspended or throttled) unless the never-suspend list, stale
// data or grace hold it back; a project already at want in this period stays there.
func holdEnforcement(d Desired, h history, want Status, overSince time.Time, p Policy, now time.Time) (Status, HoldReason) {
	already := h.samePeriod && h.lastStatus == want
	switch {
	case p.NeverSuspend[d.ProjectID]:
		return StatusNormal, HeldNeverSuspend
	case !d.Fresh && !already:
		return heldStatus(h.samePeriod, h.lastStatus), HeldStaleData
	case now.Sub(overSince) < p.Grace && !already:
		return heldStatus(h.samePeriod, h.lastStatus), HeldGrace
	}
	return want, ""
}

// enforcedOn reports whether a project with status s was enforced on a limit of kind k.
func enforcedOn(k plans.LimitKind, s Status) bool {
	switch k {
	case plans.KindHard:
		return s == StatusSuspended
	case plans.KindSoft:
		return s == StatusThrottled
	}
	return true
}

// heldStatus is what a project keeps while an enforcement is held back: its current status in
// the same period, else normal.
func heldStatus(samePeriod bool, last Status) Status {
	if samePeriod && (last == StatusSuspended || last == StatusThrottled) {
		return last
	}
	return StatusNormal
}

// statusOf reads the status out of a fingerprint.
func statusOf(applied string) Status {
	s, _, _ := strings.Cut(applied, " ")
	return Status(s)
}

// level places usage against a limit: over at Max, warning at the first warning threshold
// below 100 %. To stay at a level reached before, usage need only be within hysteresis points
// of its threshold.
func level(u uint64, l plans.Limit, prev Level, hysteresis int) Level {
	at := func(pct float64) uint64 { return uint64(math.Ceil(float64(l.Max) * pct / 100)) }
	overAt := l.Max
	warnPct := 80.0
	for _, w := range l.WarnAt {
		if w < 100 {
			warnPct = float64(w)
			break
		}
	}
	warnAt := at(warnPct)
	h := float64(hysteresis)
	if prev == LevelOver {
		overAt = at(100 - h)
	}
	if prev.rank() >= 1 {
		warnAt = at(math.Max(warnPct-h, 0))
	}
	switch {
	case u >= overAt:
		return LevelOver
	case u >= warnAt:
		return LevelWarning
	}
	return LevelOK
}

// quotaFrom is the Neon quota carrying the plan's hard limits on the metrics Neon counts.
func quotaFrom(p *plans.Plan) neon.Quota {
	hard := func(m string) int64 {
		l, ok := p.Limits[m]
		if !ok || l.Kind != plans.KindHard || l.Unlimited || l.Max == 0 || l.Max > math.MaxInt64 {
			return 0
		}
		return int64(l.Max)
	}
	return neon.Quota{
		ActiveTimeSeconds:  hard(neon.MetricActiveTimeSeconds),
		ComputeTimeSeconds: hard(neon.MetricComputeTimeSeconds),
		WrittenDataBytes:   hard(neon.MetricWrittenDataBytes),
		DataTransferBytes:  hard(plans.DataTransferBytes),
	}
}

// floorCU is the max CU a throttled project gets: the plan's minimum, at least Neon's 0.25.
func floorCU(p *plans.Plan) float64 {
	if p.Neon.ManageAutoscaling && p.Neon.MinCU >= 0.25 {
		return p.Neon.MinCU
	}
	return 0.25
}

func target(d Desired, s Status, neverSuspend bool) Target {
	p := d.Plan
	t := Target{Status: s}
	// Tighten: Neon's quota carries the plan's hard limits so Neon enforces them between our
	// cycles. A released or never-suspend project gets no quota: Neon would suspend it.
	if s != StatusReleased && !neverSuspend {
		t.Quota = quotaFrom(p)
	}
	if p.Neon.ManageAutoscaling {
		t.Defaults.AutoscalingLimitMinCU, t.Defaults.AutoscalingLimitMaxCU = p.Neon.MinCU, p.Neon.MaxCU
		t.RestoreMaxCU = p.Neon.MaxCU
	}
	if p.Neon.ManageSuspend {
		t.Defaults.SuspendTimeoutSeconds = p.Neon.SuspendTimeoutSeconds
	}
	if s == StatusReleased {
		// A release gives back what the project had before enforcement first managed it (else,
		// for projects managed before that was recorded, no quota and the plan's defaults).
		if pr := parsePrior(d.Last.Prior); pr.Settings {
			t.Quota, t.Defaults = pr.Quota, pr.Defaults
		}
	}
	switch s {
	case StatusSuspended:
		t.Quota.ActiveTimeSeconds = ActiveTimeSuspendQuota
	case StatusThrottled:
		f := floorCU(p)
		t.EndpointMaxCU = f
		t.Defaults.AutoscalingLimitMaxCU = f
		if t.Defaults.AutoscalingLimitMinCU == 0 || t.Defaults.AutoscalingLimitMinCU > f {
			t.Defaults.AutoscalingLimitMinCU = f
		}
	}
	return t
}

// ActionKind is a Neon mutation.
type ActionKind string

// Action kinds.
const (
	ActionUpdateProject   ActionKind = "update_project"   // PATCH project: quota and/or default endpoint settings
	ActionSuspendEndpoint ActionKind = "suspend_endpoint" // POST …/suspend: no wake
	ActionUpdateEndpoint  ActionKind = "update_endpoint"  // PATCH endpoint: wakes an idle compute
)

// Reason is the purpose of an action (stored in the audit's reason column).
type Reason string

// Reasons.
const (
	ReasonTighten  Reason = "tighten"  // the plan's quota and defaults, first set
	ReasonSuspend  Reason = "suspend"  // over a hard limit
	ReasonThrottle Reason = "throttle" // over a soft limit
	ReasonRestore  Reason = "restore"  // back from suspended or throttled
	ReasonRelease  Reason = "release"  // an operator released the project
	ReasonDrift    Reason = "drift"    // settings changed by hand, put back
	ReasonCap      Reason = "cap"      // a running compute above the plan's max CU, brought down to it
)

// Action is one minimal Neon mutation.
type Action struct {
	ProjectID  string
	Kind       ActionKind
	Reason     Reason
	Quota      *neon.Quota
	Defaults   *neon.DefaultEndpointSettings
	EndpointID string
	// MinCU and MaxCU are an endpoint's new autoscaling limits (update_endpoint).
	MinCU, MaxCU float64
	// PrevMinCU and PrevMaxCU are the endpoint's limits before the change (update_endpoint),
	// remembered as its prior range when enforcement first changes it.
	PrevMinCU, PrevMaxCU float64
	// WakeRisk is set when the endpoint is idle: Neon starts it to apply the change.
	WakeRisk bool
	// Before and After describe the change for the audit.
	Before, After string
}

// Plan returns the minimal actions that bring a project's observed Neon state to the target
// Evaluate chose, and whether endpoint changes wait for computes to be active. It is pure: no
// I/O, no clock but now.
func Plan(d Desired, o Observed, p Policy, now time.Time) []Action {
	acts, _ := PlanVerdict(Evaluate(d, p, now), o, p)
	return acts
}

// PlanVerdict is Plan for an evaluated project; pending reports endpoint changes deferred
// until the compute is active (patching an idle one would wake it).
func PlanVerdict(v Verdict, o Observed, p Policy) (acts []Action, pending bool) {
	if v.Plan == "" || !o.Known {
		return nil, false
	}
	if up, ok := projectUpdate(v, o); ok {
		acts = append(acts, up)
	}
	pr := parsePrior(v.Next.Prior)
	for _, ep := range o.Endpoints {
		a, ok, wait := endpointAction(v, ep, pr, p)
		if ok {
			acts = append(acts, a)
		}
		pending = pending || wait
	}
	return acts, pending
}

// projectUpdate is the one PATCH of the project that carries both the quota and the defaults
// (one operation to wait for); ok is false when both already match the target.
func projectUpdate(v Verdict, o Observed) (up Action, ok bool) {
	t := v.Target
	wantQ := t.Quota
	wantQ.LogicalSizeBytes = o.Quota.LogicalSizeBytes
	if wantQ != o.Quota {
		q := wantQ
		up.Quota = &q
		up.Before, up.After = quotaText(o.Quota), quotaText(wantQ)
	}
	if d, changed := defaultsDiff(t.Defaults, o.Defaults); changed {
		up.Defaults = &d
		up.Before = strings.TrimSpace(up.Before + " " + defaultsText(o.Defaults))
		up.After = strings.TrimSpace(up.After + " " + defaultsText(merge(o.Defaults, d)))
	}
	if up.Quota == nil && up.Defaults == nil {
		return Action{}, false
	}
	up.ProjectID, up.Kind, up.Reason = v.ProjectID, ActionUpdateProject, reasonFor(v, o)
	return up, true
}

// endpointAction is the change one compute needs: ok when there is one to send now, wait when
// it is held until the compute is active. An idle compute is never patched (that wakes it) but to
// throttle with Policy.ThrottleIdle.
func endpointAction(v Verdict, ep neon.Endpoint, pr prior, p Policy) (a Action, ok, wait bool) {
	t := v.Target
	active := ep.CurrentState == neon.EndpointStateActive && !ep.Disabled
	switch t.Status {
	case StatusSuspended:
		a = Action{ProjectID: v.ProjectID, Kind: ActionSuspendEndpoint, Reason: ReasonSuspend, EndpointID: ep.ID,
			Before: "active", After: "suspended"}
		return a, active, false
	case StatusThrottled:
		if ep.AutoscalingLimitMaxCU <= t.EndpointMaxCU {
			return Action{}, false, false
		}
		a = endpointUpdate(v, ep, max(math.Min(ep.AutoscalingLimitMinCU, t.EndpointMaxCU), 0.25), t.EndpointMaxCU, ReasonThrottle)
		send := active || p.ThrottleIdle
		return a, send, !send
	}
	minCU, maxCU, reason, change := endpointWant(v, ep, pr)
	if !change {
		return Action{}, false, false
	}
	a = endpointUpdate(v, ep, minCU, maxCU, reason)
	if reason == ReasonCap {
		return a, active, false // an idle compute over the plan's max is left alone (IdleOverMax)
	}
	return a, active, !active
}

// endpointUpdate is the PATCH of one compute's autoscaling limits.
func endpointUpdate(v Verdict, ep neon.Endpoint, minCU, maxCU float64, r Reason) Action {
	active := ep.CurrentState == neon.EndpointStateActive && !ep.Disabled
	return Action{ProjectID: v.ProjectID, Kind: ActionUpdateEndpoint, Reason: r, EndpointID: ep.ID, MinCU: minCU, MaxCU: maxCU,
		PrevMinCU: ep.AutoscalingLimitMinCU, PrevMaxCU: ep.AutoscalingLimitMaxCU, WakeRisk: !active,
		Before: fmt.Sprintf("cu=%g-%g", ep.AutoscalingLimitMinCU, ep.AutoscalingLimitMaxCU), After: fmt.Sprintf("cu=%g-%g", minCU, maxCU)}
}

// endpointWant is the autoscaling range of a compute whose project is neither suspended nor
// throttled: the range it had before enforcement changed it (its prior range), else its own;
// capped at the plan's max CU unless released. change is false when it already has it.
func endpointWant(v Verdict, ep neon.Endpoint, pr prior) (minCU, maxCU float64, reason Reason, change bool) {
	t := v.Target
	minCU, maxCU, reason = ep.AutoscalingLimitMinCU, ep.AutoscalingLimitMaxCU, ReasonCap
	if e, ok := pr.endpoint(ep.ID); ok {
		minCU, maxCU, reason = e.MinCU, e.MaxCU, ReasonRestore
	} else if !pr.Settings && t.RestoreMaxCU > 0 && ep.AutoscalingLimitMaxCU < t.RestoreMaxCU && v.Next.Known &&
		(statusOf(v.Next.Applied) == StatusThrottled || v.Next.EndpointsPending) {
		// Throttled before prior ranges were recorded: only the plan's max is known.
		minCU, maxCU, reason = max(ep.AutoscalingLimitMinCU, 0.25), t.RestoreMaxCU, ReasonRestore
	}
	if t.Status != StatusReleased && t.RestoreMaxCU > 0 && maxCU > t.RestoreMaxCU {
		maxCU = t.RestoreMaxCU
		minCU = math.Min(minCU, maxCU)
	}
	change = minCU != ep.AutoscalingLimitMinCU || maxCU != ep.AutoscalingLimitMaxCU
	return minCU, maxCU, reason, change
}

// IdleOverMax counts the idle computes above the plan's max CU that a plan for v leaves alone
// (a PATCH would wake them); they are capped once a cycle sees them running.
func IdleOverMax(v Verdict, o Observed) int {
	if v.Plan == "" || !o.Known || v.Target.Status == StatusSuspended || v.Target.Status == StatusThrottled {
		return 0
	}
	pr := parsePrior(v.Next.Prior)
	n := 0
	for _, ep := range o.Endpoints {
		active := ep.CurrentState == neon.EndpointStateActive && !ep.Disabled
		if _, _, reason, change := endpointWant(v, ep, pr); change && reason == ReasonCap && !active {
			n++
		}
	}
	return n
}

// reasonFor names the purpose of a project update.
func reasonFor(v Verdict, o Observed) Reason {
	switch v.Target.Status {
	case StatusSuspended:
		return ReasonSuspend
	case StatusThrottled:
		return ReasonThrottle
	case StatusReleased:
		return ReasonRelease
	}
	if o.Quota.ActiveTimeSeconds == ActiveTimeSuspendQuota || statusOf(v.Next.Applied) == StatusSuspended || statusOf(v.Next.Applied) == StatusThrottled {
		return ReasonRestore
	}
	if statusOf(v.Next.Applied) == StatusNormal {
		return ReasonDrift
	}
	return ReasonTighten
}

// defaultsDiff returns the managed fields of want that differ from have.
func defaultsDiff(want, have neon.DefaultEndpointSettings) (neon.DefaultEndpointSettings, bool) {
	var d neon.DefaultEndpointSettings
	changed := false
	if want.AutoscalingLimitMinCU != 0 && want.AutoscalingLimitMinCU != have.AutoscalingLimitMinCU {
		d.AutoscalingLimitMinCU, changed = want.AutoscalingLimitMinCU, true
	}
	if want.AutoscalingLimitMaxCU != 0 && want.AutoscalingLimitMaxCU != have.AutoscalingLimitMaxCU {
		d.AutoscalingLimitMaxCU, changed = want.AutoscalingLimitMaxCU, true
	}
	if want.SuspendTimeoutSeconds != 0 && want.SuspendTimeoutSeconds != have.SuspendTimeoutSeconds {
		d.SuspendTimeoutSeconds, changed = want.SuspendTimeoutSeconds, true
	}
	if changed {
		// Min and max travel together so Neon never sees min above max half-way.
		if want.AutoscalingLimitMinCU != 0 {
			d.AutoscalingLimitMinCU = want.AutoscalingLimitMinCU
		}
		if want.AutoscalingLimitMaxCU != 0 {
			d.AutoscalingLimitMaxCU = want.AutoscalingLimitMaxCU
		}
	}
	return d, changed
}

func merge(have, d neon.DefaultEndpointSettings) neon.DefaultEndpointSettings {
	if d.AutoscalingLimitMinCU != 0 {
		have.AutoscalingLimitMinCU = d.AutoscalingLimitMinCU
	}
	if d.AutoscalingLimitMaxCU != 0 {
		have.AutoscalingLimitMaxCU = d.AutoscalingLimitMaxCU
	}
	if d.SuspendTimeoutSeconds != 0 {
		have.SuspendTimeoutSeconds = d.SuspendTimeoutSeconds
	}
	return have
}

func quotaText(q neon.Quota) string {
	return fmt.Sprintf("quota=%d,%d,%d,%d", q.ActiveTimeSeconds, q.ComputeTimeSeconds, q.WrittenDataBytes, q.DataTransferBytes)
}

func defaultsText(d neon.DefaultEndpointSettings) string {
	return fmt.Sprintf("defaults=%g-%g,%d", d.AutoscalingLimitMinCU, d.AutoscalingLimitMaxCU, d.SuspendTimeoutSeconds)
}

// String is the action on one line, as reports and tests show it.
func (a Action) String() string {
	s := fmt.Sprintf("%s %s %s", a.ProjectID, a.Kind, a.Reason)
	if a.EndpointID != "" {
		s += " " + a.EndpointID
	}
	return s + ": " + a.Before + " -> " + a.After
}
