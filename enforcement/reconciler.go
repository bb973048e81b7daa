package enforcement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// Config holds a reconciler's dependencies.
type Config struct {
	Neon     Neon
	Conn     driver.Conn
	Database string
	Catalog  *plans.Catalog
	// DefaultPlan applies to projects nobody owns (accounts.DefaultPlan checks it).
	DefaultPlan string
	Policy      Policy
	Now         func() time.Time // default time.Now
	Logger      *slog.Logger     // default discards
	Metrics     *Metrics         // optional
}

// Reconciler runs enforcement cycles. One cycle at a time: callers serialize (serve runs it on a
// schedule, the CLI once).
type Reconciler struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg, fills the policy's defaults and returns a reconciler.
func New(cfg Config) (*Reconciler, error) {
	var errs []error
	if cfg.Neon == nil {
		errs = append(errs, errors.New("enforcement: Neon is required"))
	}
	if cfg.Conn == nil || cfg.Database == "" {
		errs = append(errs, errors.New("enforcement: Conn and Database are required"))
	}
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("enforcement: Catalog is required"))
	} else {
		if _, ok := cfg.Catalog.Plan(cfg.DefaultPlan); !ok {
			errs = append(errs, fmt.Errorf("enforcement: default plan %q is not in the catalog", cfg.DefaultPlan))
		}
		// A throttle is undone by raising max CU back to the plan's: a plan that does not manage
		// autoscaling has none, so a throttled project would stay at the floor for good.
		for _, p := range cfg.Catalog.Plans {
			if p.Neon.ManageAutoscaling {
				continue
			}
			for m, l := range p.Limits {
				if l.Kind == plans.KindSoft {
					errs = append(errs, fmt.Errorf("enforcement: plan %q has a soft limit on %s but no autoscaling_max_cu to restore after a throttle", p.Name, m))
					break
				}
			}
		}
	}
	p := &cfg.Policy
	if p.Mode == "" {
		p.Mode = ModeDryRun
	}
	if _, err := ParseMode(string(p.Mode)); err != nil {
		errs = append(errs, err)
	}
	if p.Grace < 0 || p.StaleAfter < 0 || p.HysteresisPercent < 0 || p.HysteresisPercent >= 80 || p.MaxActions < 0 ||
		p.MaxPercent < 0 || p.MaxPercent > 100 || p.DriftReads < 0 || p.MaxReads < 0 {
		errs = append(errs, errors.New("enforcement: policy values must not be negative (hysteresis below 80, percent at most 100)"))
	}
	if p.StaleAfter == 0 {
		p.StaleAfter = DefaultStaleAfter
	}
	if p.MaxReads == 0 {
		p.MaxReads = DefaultMaxReads
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{cfg: cfg, log: log.With("component", "enforcement")}, nil
}

// DefaultPolicy returns the policy defaults in dry-run mode.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeDryRun, Grace: DefaultGrace, HysteresisPercent: DefaultHysteresisPercent, StaleAfter: DefaultStaleAfter,
		MaxActions: DefaultMaxActions, MaxPercent: DefaultMaxPercent, DriftReads: DefaultDriftReads, MaxReads: DefaultMaxReads}
}

// PeriodStart is the start of the plan period containing t: the calendar month in UTC, which is
// how Neon's own billing periods run (a period restarts at a plan change too, which the
// plan-change restore covers) and what the plan catalog's monthly allowances mean.
func PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// CycleOptions narrow one cycle.
type CycleOptions struct {
	// DryRun plans without mutating Neon, whatever the policy's mode, and records nothing: no
	// audit rows, no remembered levels (the policy's dry-run mode, as serve runs it, records both).
	DryRun bool
	// Only limits reads and actions to these projects (release, explain); nil means the fleet.
	Only []string
}

// Row is one project's line of a cycle's report.
type Row struct {
	ProjectID string
	Plan      string
	Level     Level
	Status    Status
	Metric    string
	Kind      plans.LimitKind
	Usage     uint64
	Limit     uint64
	Held      string
	Crossed   bool
	Read      bool
	Actions   []Action
	// Outcome is "applied", "planned" (dry run), "deferred" (breaker), "failed" or "".
	Outcome          string
	Error            string
	EndpointsPending bool
}

// Report is what one cycle saw and did.
type Report struct {
	CycleID string
	At      time.Time
	Mode    Mode
	Fleet   int
	// FleetByPlan counts the fleet per plan in force ("" for projects held on an unknown plan).
	FleetByPlan    map[string]int
	Rows           []Row // every project with an action, a crossing, a hold or a level above ok
	Reads          int
	Mutations      int
	Failures       int
	BreakerTripped bool
	BreakerCap     int
	Enforcing      int // projects the limits would newly suspend or throttle
}

// Cycle runs one pass over the fleet: evaluate every project from ClickHouse alone, read Neon
// for those whose target changed (plus a few for drift), plan, apply within the breaker, then
// record state and audit. A failed project does not stop the cycle; the error lists failures.
func (r *Reconciler) Cycle(ctx context.Context, opts CycleOptions) (*Report, error) {
	start := time.Now()
	rep, err := r.cycle(ctx, opts)
	if m := r.cfg.Metrics; m != nil {
		m.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			m.cycles.WithLabelValues("failure").Inc()
		} else {
			m.cycles.WithLabelValues("success").Inc()
			m.lastSuccess.Set(float64(r.cfg.Now().Unix()))
		}
	}
	return rep, err
}

// project is one project's working state in a cycle.
type project struct {
	d Desired
	v Verdict
}

// Evaluated is the fleet's evaluation before Neon is read.
type Evaluated struct {
	Now      time.Time
	Period   time.Time
	Projects map[string]*Desired
	States   map[string]schema.EnforcementState
}

// Load reads everything a cycle needs from ClickHouse: accounts, one usage query for the whole
// fleet, watermarks and the remembered states.
func (r *Reconciler) Load(ctx context.Context, now time.Time) (*Evaluated, error) {
	db, conn := r.cfg.Database, r.cfg.Conn
	period := PeriodStart(now)
	ev := &Evaluated{Now: now, Period: period, Projects: map[string]*Desired{}}
	get := func(id string) *Desired {
		d := ev.Projects[id]
		if d == nil {
			d = &Desired{ProjectID: id, PeriodStart: period, Usage: map[string]uint64{}}
			ev.Projects[id] = d
		}
		return d
	}
	err := schema.UsageSince(ctx, conn, db, period, now.Add(time.Hour), func(u schema.PeriodUsage) {
		d := get(u.ProjectID)
		d.OrgID = u.OrgID
		v := u.Sum
		if mi, ok := plans.LookupMetric(u.Metric); ok && mi.Level {
			v = u.Max
		}
		d.Usage[u.Metric] = v
	})
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	withUsage := make([]string, 0, len(ev.Projects))
	for id := range ev.Projects {
		withUsage = append(withUsage, id)
	}
	sort.Strings(withUsage)
	as, err := accounts.AssignmentsAt(ctx, conn, db, now, withUsage, r.cfg.DefaultPlan)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	assigned := make(map[string]bool, len(as))
	for _, a := range as {
		d := get(a.ProjectID)
		assigned[a.ProjectID] = true
		if p, ok := r.cfg.Catalog.Plan(a.Plan); ok {
			d.Plan = p
		}
	}
	wms, err := schema.HourlyWatermarks(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	// Data is fresh when the org's newest hourly watermark is within the bound; a project whose
	// org is unknown (no usage this period) is judged by the stalest org.
	fresh := map[string]bool{}
	allFresh := len(wms) > 0
	for _, w := range wms {
		ok := now.Sub(w.CoveredUntil) <= r.cfg.Policy.StaleAfter
		fresh[w.OrgID] = fresh[w.OrgID] || ok
	}
	for _, ok := range fresh {
		allFresh = allFresh && ok
	}
	states, err := schema.EnforcementStates(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("enforcement load: %w", err)
	}
	ev.States = states
	for id, s := range states {
		d := get(id)
		d.Last = memoryOf(s)
	}
	for _, d := range ev.Projects {
		if d.OrgID != "" {
			d.Fresh = fresh[d.OrgID]
		} else {
			d.Fresh = allFresh
		}
		if d.Plan == nil && !assigned[d.ProjectID] {
			// Known from state only (no account, no usage): the default plan applies. A plan the
			// catalog does not know stays nil (nothing is done): judging a customer's own plan by
			// the default one would suspend a paying customer.
			d.Plan, _ = r.cfg.Catalog.Plan(r.cfg.DefaultPlan)
		}
	}
	return ev, nil
}

func memoryOf(s schema.EnforcementState) Memory {
	m := Memory{Known: true, PeriodStart: s.PeriodStart, Plan: s.Plan, Level: Level(s.Level), OverSince: s.OverSince,
		Applied: s.Applied, EndpointsPending: s.EndpointsPending, ObservedAt: s.ObservedAt}
	m.Released = !s.ReleasedPeriod.IsZero() && s.ReleasedPeriod.Equal(s.PeriodStart)
	if m.Level == "" {
		m.Level = LevelOK
	}
	return m
}

func stateOf(id string, m Memory, now time.Time) schema.EnforcementState {
	s := schema.EnforcementState{ProjectID: id, PeriodStart: m.PeriodStart, Plan: m.Plan, Level: string(m.Level), OverSince: m.OverSince,
		Applied: m.Applied, EndpointsPending: m.EndpointsPending, ObservedAt: m.ObservedAt, UpdatedAt: now,
		Version: uint64(now.UnixNano())}
	if m.Released {
		s.ReleasedPeriod = m.PeriodStart
	}
	return s
}

func newCycleID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "enf-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (r *Reconciler) cycle(ctx context.Context, opts CycleOptions) (*Report, error) {
	now := r.cfg.Now().UTC()
	pol := r.cfg.Policy
	mode := pol.Mode
	if opts.DryRun {
		mode = ModeDryRun
	}
	rep := &Report{CycleID: newCycleID(now), At: now, Mode: mode}
	ev, err := r.Load(ctx, now)
	if err != nil {
		return rep, err
	}
	rep.Fleet = len(ev.Projects)
	rep.FleetByPlan = map[string]int{}
	for _, d := range ev.Projects {
		name := ""
		if d.Plan != nil {
			name = d.Plan.Name
		}
		rep.FleetByPlan[name]++
	}
	only := map[string]bool{}
	for _, id := range opts.Only {
		only[id] = true
	}
	ids := make([]string, 0, len(ev.Projects))
	for id := range ev.Projects {
		if opts.Only == nil || only[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	ps := make([]*project, 0, len(ids))
	for _, id := range ids {
		d := ev.Projects[id]
		ps = append(ps, &project{d: *d, v: Evaluate(*d, pol, now)})
	}

	// Circuit breaker: count projects the limits would newly suspend or throttle; beyond the cap
	// they keep their current status this cycle (and are reconsidered next cycle).
	capN := pol.MaxActions
	if byPct := int(math.Ceil(pol.MaxPercent / 100 * float64(rep.Fleet))); byPct < capN {
		capN = byPct
	}
	rep.BreakerCap = capN
	for _, p := range ps {
		if !p.v.Enforces {
			continue
		}
		rep.Enforcing++
		if rep.Enforcing > capN {
			rep.BreakerTripped = true
			p.v = hold(p.d, p.v, pol, "circuit breaker")
		}
	}

	// Read Neon only where the target moved, the state is unknown or endpoints wait; then a few
	// of the rest, least recently read first, to catch settings changed by hand.
	var mustRead, drift []*project
	for _, p := range ps {
		last := p.d.Last
		if p.v.Plan == "" {
			continue
		}
		if last.Applied == "" || last.Applied != p.v.Target.Fingerprint() || last.EndpointsPending {
			mustRead = append(mustRead, p)
		} else {
			drift = append(drift, p)
		}
	}
	sort.SliceStable(mustRead, func(i, j int) bool { return mustRead[i].v.Enforces && !mustRead[j].v.Enforces })
	sort.SliceStable(drift, func(i, j int) bool { return drift[i].d.Last.ObservedAt.Before(drift[j].d.Last.ObservedAt) })
	budget := pol.MaxReads
	toRead := mustRead[:min(len(mustRead), budget)]
	if rest := budget - len(toRead); rest > 0 && opts.Only == nil {
		toRead = append(toRead, drift[:min(len(drift), rest, pol.DriftReads)]...)
	} else if opts.Only != nil {
		toRead = append(toRead, drift...)
	}
	read := map[*project]bool{}
	for _, p := range toRead {
		read[p] = true
	}

	var failures []error
	var pendingStates []schema.EnforcementState
	var pendingAudit []schema.AuditRecord
	for _, p := range ps {
		row := Row{ProjectID: p.d.ProjectID, Plan: p.v.Plan, Level: p.v.Level, Status: p.v.Target.Status, Metric: p.v.Worst.Metric,
			Kind: p.v.Worst.Kind, Usage: p.v.Worst.Usage, Limit: p.v.Worst.Limit, Held: p.v.Held, Crossed: p.v.Crossed}
		next := p.v.Next
		var audit []schema.AuditRecord
		if p.v.Crossed {
			audit = append(audit, r.record(rep, p, mode, "decision", string(p.v.Target.Status), "", "", nil, "recorded", ""))
			if m := r.cfg.Metrics; m != nil {
				m.crossings.WithLabelValues(string(p.v.Level)).Inc()
			}
		}
		if read[p] {
			row.Read = true
			rep.Reads++
			if m := r.cfg.Metrics; m != nil {
				m.reads.Inc()
			}
			o, err := observe(ctx, r.cfg.Neon, p.d.ProjectID)
			if err != nil {
				failures = append(failures, err)
				row.Outcome, row.Error = "failed", err.Error()
				rep.Failures++
			} else {
				acts, pending := PlanVerdict(p.v, o, pol)
				row.Actions, row.EndpointsPending = acts, pending
				outcome, errText, done := r.apply(ctx, rep, p, mode, acts, &audit)
				row.Outcome, row.Error = outcome, errText
				if errText != "" {
					failures = append(failures, fmt.Errorf("project %s: %s", p.d.ProjectID, errText))
					rep.Failures++
				}
				if done {
					// Neon now matches the target: remember it so the next cycle need not read.
					next.Applied, next.EndpointsPending, next.ObservedAt = p.v.Target.Fingerprint(), pending, now
				}
			}
		}
		if row.Held == "circuit breaker" {
			row.Outcome = "deferred"
		}
		changed := !p.d.Last.Known || next != p.d.Last
		switch {
		case opts.DryRun:
			// An explicit dry run only shows the plan: remembering its levels would use up the
			// crossings that the serving process must record and alert on.
		case changed:
			st := stateOf(p.d.ProjectID, next, now)
			if len(audit) > 0 && row.Read {
				// A project that was acted on is recorded at once, so a crash loses at most the
				// project in flight (whose re-run finds Neon already as wanted).
				if err := schema.InsertAudit(ctx, r.cfg.Conn, r.cfg.Database, audit); err != nil {
					return rep, fmt.Errorf("enforcement cycle %s: %w", rep.CycleID, err)
				}
				if err := schema.WriteEnforcementStates(ctx, r.cfg.Conn, r.cfg.Database, []schema.EnforcementState{st}); err != nil {
					return rep, fmt.Errorf("enforcement cycle %s: %w", rep.CycleID, err)
				}
			} else {
				pendingAudit = append(pendingAudit, audit...)
				pendingStates = append(pendingStates, st)
			}
		default:
			pendingAudit = append(pendingAudit, audit...)
		}
		if len(row.Actions) > 0 || row.Crossed || row.Held != "" || row.Level != LevelOK || row.Status != StatusNormal || row.Error != "" {
			rep.Rows = append(rep.Rows, row)
		}
	}
	if err := schema.InsertAudit(ctx, r.cfg.Conn, r.cfg.Database, pendingAudit); err != nil {
		return rep, fmt.Errorf("enforcement cycle %s: %w", rep.CycleID, err)
	}
	for start := 0; start < len(pendingStates); start += 10000 {
		if err := schema.WriteEnforcementStates(ctx, r.cfg.Conn, r.cfg.Database, pendingStates[start:min(start+10000, len(pendingStates))]); err != nil {
			return rep, fmt.Errorf("enforcement cycle %s: %w", rep.CycleID, err)
		}
	}
	r.cfg.Metrics.observeCycle(rep)
	r.log.Info("enforcement cycle", "cycle", rep.CycleID, "mode", mode, "fleet", rep.Fleet, "reads", rep.Reads,
		"mutations", rep.Mutations, "failures", rep.Failures, "enforcing", rep.Enforcing, "breaker_tripped", rep.BreakerTripped)
	if len(failures) > 0 {
		return rep, fmt.Errorf("enforcement cycle %s: %d project(s) failed: %w", rep.CycleID, len(failures), errors.Join(failures...))
	}
	return rep, nil
}

// hold keeps a project at its current status for reason.
func hold(d Desired, v Verdict, pol Policy, reason string) Verdict {
	samePeriod := d.Last.Known && d.Last.PeriodStart.Equal(d.PeriodStart)
	v.Target = target(d, heldStatus(samePeriod, statusOf(d.Last.Applied)), pol.NeverSuspend[d.ProjectID])
	v.Held, v.Enforces = reason, false
	return v
}

// apply sends a project's actions in order (dry run: records them as planned). It stops at the
// first failure: later actions assume the earlier ones happened. done reports that Neon now
// matches the target.
func (r *Reconciler) apply(ctx context.Context, rep *Report, p *project, mode Mode, acts []Action, audit *[]schema.AuditRecord) (outcome, errText string, done bool) {
	if len(acts) == 0 {
		return "", "", true
	}
	if mode != ModeEnforce {
		for _, a := range acts {
			before, after := auditSides(a)
			*audit = append(*audit, r.record(rep, p, mode, string(a.Kind), a.Reason, before, after, nil, "planned", ""))
			r.countAction(a, "planned")
		}
		return "planned", "", false
	}
	for _, a := range acts {
		if a.WakeRisk {
			if m := r.cfg.Metrics; m != nil {
				m.wakeRisk.Inc()
			}
			r.log.Warn("endpoint patch wakes an idle compute", "project", a.ProjectID, "endpoint", a.EndpointID, "reason", a.Reason)
		}
		before, after := auditSides(a)
		ops, err := applyAction(ctx, r.cfg.Neon, a)
		rep.Mutations++
		if err != nil {
			*audit = append(*audit, r.record(rep, p, mode, string(a.Kind), a.Reason, before, after, ops, "failed", err.Error()))
			r.countAction(a, "failed")
			r.log.Error("enforcement action failed", "project", a.ProjectID, "action", a.Kind, "reason", a.Reason, "err", err)
			return "failed", err.Error(), false
		}
		*audit = append(*audit, r.record(rep, p, mode, string(a.Kind), a.Reason, before, after, ops, "applied", ""))
		r.countAction(a, "applied")
		r.log.Info("enforcement action", "project", a.ProjectID, "action", a.Kind, "reason", a.Reason, "endpoint", a.EndpointID, "after", a.After)
	}
	return "applied", "", true
}

// auditSides are an action's before and after for its audit row; an endpoint action names its
// endpoint, or a project's computes could not be told apart in the audit.
func auditSides(a Action) (before, after string) {
	if a.EndpointID == "" {
		return a.Before, a.After
	}
	return "endpoint=" + a.EndpointID + " " + a.Before, "endpoint=" + a.EndpointID + " " + a.After
}

func (r *Reconciler) countAction(a Action, outcome string) {
	if m := r.cfg.Metrics; m != nil {
		m.actions.WithLabelValues(string(a.Kind), outcome).Inc()
	}
}

func (r *Reconciler) record(rep *Report, p *project, mode Mode, action, reason, before, after string, ops []string, outcome, errText string) schema.AuditRecord {
	w := p.v.Worst
	if action == "decision" && p.v.Held != "" {
		reason += " (held: " + p.v.Held + ")"
	}
	return schema.AuditRecord{At: rep.At, CycleID: rep.CycleID, ProjectID: p.d.ProjectID, Plan: p.v.Plan, Metric: w.Metric, Usage: w.Usage,
		Limit: w.Limit, Level: string(p.v.Level), Action: action, Reason: reason, Mode: string(mode), Before: before, After: after,
		OperationIDs: ops, Outcome: outcome, Error: errText}
}

// Explanation is why a project is where it is.
type Explanation struct {
	Desired  Desired
	Verdict  Verdict
	Observed Observed
	// ObserveError is set when Neon could not be read.
	ObserveError string
	Actions      []Action
	Pending      bool
	Audit        []schema.AuditRecord
}

// Explain evaluates one project as a cycle would, reads its Neon state and lists the actions
// a cycle would take and its recent audit trail. It changes nothing.
func (r *Reconciler) Explain(ctx context.Context, projectID string) (*Explanation, error) {
	now := r.cfg.Now().UTC()
	ev, err := r.Load(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", projectID, err)
	}
	d := ev.Projects[projectID]
	if d == nil {
		d = &Desired{ProjectID: projectID, PeriodStart: ev.Period, Usage: map[string]uint64{}}
		d.Plan, _ = r.cfg.Catalog.Plan(r.cfg.DefaultPlan)
	}
	x := &Explanation{Desired: *d, Verdict: Evaluate(*d, r.cfg.Policy, now)}
	if o, err := observe(ctx, r.cfg.Neon, projectID); err != nil {
		x.ObserveError = err.Error()
	} else {
		x.Observed = o
		x.Actions, x.Pending = PlanVerdict(x.Verdict, o, r.cfg.Policy)
	}
	if x.Audit, err = schema.AuditOf(ctx, r.cfg.Conn, r.cfg.Database, projectID, 20); err != nil {
		return nil, fmt.Errorf("explain %s: %w", projectID, err)
	}
	return x, nil
}

// Release lifts enforcement from a project for the rest of the current period: it records the
// release (state and audit), then runs a cycle for that project alone, which restores it in
// enforce mode. A new period ends the release.
func (r *Reconciler) Release(ctx context.Context, projectID string) (*Report, error) {
	if !accounts.ValidProjectID(projectID) {
		return nil, fmt.Errorf("release: project id %q does not look like a Neon project id", projectID)
	}
	now := r.cfg.Now().UTC()
	states, err := schema.EnforcementStates(ctx, r.cfg.Conn, r.cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	m := Memory{Level: LevelOK}
	if s, ok := states[projectID]; ok {
		m = memoryOf(s)
	}
	period := PeriodStart(now)
	if !m.PeriodStart.Equal(period) {
		m = Memory{Level: LevelOK, Plan: m.Plan, Applied: m.Applied, EndpointsPending: m.EndpointsPending, ObservedAt: m.ObservedAt}
	}
	m.Known, m.PeriodStart, m.Released = true, period, true
	if err := schema.WriteEnforcementStates(ctx, r.cfg.Conn, r.cfg.Database, []schema.EnforcementState{stateOf(projectID, m, now)}); err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	rec := schema.AuditRecord{At: now, CycleID: "release", ProjectID: projectID, Plan: m.Plan, Level: string(m.Level), Action: "decision",
		Reason: "release", Mode: string(r.cfg.Policy.Mode), After: "released until " + period.AddDate(0, 1, 0).Format(time.RFC3339), Outcome: "recorded"}
	if err := schema.InsertAudit(ctx, r.cfg.Conn, r.cfg.Database, []schema.AuditRecord{rec}); err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	return r.Cycle(ctx, CycleOptions{Only: []string{projectID}})
}
