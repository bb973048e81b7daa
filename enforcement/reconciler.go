package enforcement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// Config holds a reconciler's dependencies.
type Config struct {
	Neon Neon
	// Store holds usage, watermarks, states and the audit (enforcement/chstore on ClickHouse).
	Store Store
	// Accounts says which plan each project is on.
	Accounts accounts.Store
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
	if cfg.Store == nil || cfg.Accounts == nil {
		errs = append(errs, errors.New("enforcement: Store and Accounts are required"))
	}
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("enforcement: Catalog is required"))
	} else {
		errs = append(errs, checkCatalog(cfg.Catalog, cfg.DefaultPlan)...)
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

// CheckCatalog lists what makes a catalog unfit for enforcement (New refuses such a catalog);
// exported so a draft catalog (plans simulate) is held to the same rules as the real one.
func CheckCatalog(cat *plans.Catalog, defaultPlan string) []error {
	return checkCatalog(cat, defaultPlan)
}

// checkCatalog lists what makes a catalog unfit for enforcement.
func checkCatalog(cat *plans.Catalog, defaultPlan string) []error {
	var errs []error
	if _, ok := cat.Plan(defaultPlan); !ok {
		errs = append(errs, fmt.Errorf("enforcement: default plan %q is not in the catalog", defaultPlan))
	}
	// A throttle is undone by raising max CU back to the plan's: a plan that does not manage
	// autoscaling has none, so a throttled project would stay at the floor for good.
	for _, p := range cat.Plans {
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
	return errs
}

// DefaultPolicy returns the policy defaults in dry-run mode.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeDryRun, Grace: DefaultGrace, HysteresisPercent: DefaultHysteresisPercent, StaleAfter: DefaultStaleAfter,
		MaxActions: DefaultMaxActions, MaxPercent: DefaultMaxPercent, BreakerLatch: true, DriftReads: DefaultDriftReads, MaxReads: DefaultMaxReads}
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
	Held      HoldReason
	Crossed   bool
	Read      bool
	Actions   []Action
	// Outcome is applied, planned (dry run), deferred (breaker), failed, gone (Neon has no such
	// project) or "" (nothing to do).
	Outcome          Outcome
	Error            string
	EndpointsPending bool
	// IdleOverMax counts idle computes above the plan's max CU, left alone until seen running.
	IdleOverMax int
}

// Report is what one cycle saw and did.
type Report struct {
	CycleID string
	At      time.Time
	Mode    Mode
	Fleet   int
	// FleetByPlan counts the fleet per plan in force ("" for projects held on an unknown plan).
	FleetByPlan map[string]int
	Rows        []Row // every project with an action, a crossing, a hold or a level above ok
	// Reads counts the projects read one by one: their computes, or GET project where no list
	// showed them.
	Reads int
	// Neon calls of the cycle: project list pages, GET project and GET …/endpoints; Mutations
	// are the changes sent (each waits for its operations: those polls are the client's,
	// neonmeter_neon_api_requests_total).
	ListCalls, GetCalls, EndpointCalls int
	// Rechecked counts the suspended, throttled or waiting projects checked from their list
	// entry, in RecheckCalls list calls (their orgs').
	Rechecked, RecheckCalls int
	Mutations               int
	Failures                int
	// AtRisk counts the projects near or over a hard limit, or suspended (atrisk.go); the set
	// published changed by AtRiskEntered and AtRiskLeft projects (full recording cycles only).
	AtRisk, AtRiskEntered, AtRiskLeft int
	// Gone counts the projects remembered as deleted in Neon (skipped).
	Gone int
	// IdleOverMax counts idle computes above their plan's max CU (left alone).
	IdleOverMax int
	// BreakerTripped is set when the breaker held projects back this cycle or holds a trip no
	// operator acknowledged yet (BreakerLatched, since BreakerTrippedAt).
	BreakerTripped, BreakerLatched bool
	BreakerTrippedAt               time.Time
	BreakerCap                     int
	Enforcing                      int // projects the limits would newly suspend or throttle
}

// Cycle runs one pass over the fleet: load from storage, observe every project from its org's
// project list, evaluate, read the computes of the projects whose computes matter this cycle
// (plus a few for drift), plan, apply within the breaker, then record state, audit and the
// at-risk set. A failed project does not stop the cycle; the error lists failures.
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

// Explanation is why a project is where it is.
type Explanation struct {
	Desired  Desired
	Verdict  Verdict
	Observed Observed
	// ObserveError is set when Neon could not be read.
	ObserveError string
	Actions      []Action
	Pending      bool
	Audit        []AuditRecord
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
	x := &Explanation{}
	o, e, err := observe(ctx, r.cfg.Neon, projectID)
	if err == nil {
		if d.OrgID == "" {
			d.OrgID = e.OrgID
		}
		d.Fresh = ev.fresh.of(d, e.LastActive, true)
	}
	x.Desired, x.Verdict = *d, Evaluate(*d, r.cfg.Policy, now)
	if err != nil {
		x.ObserveError = err.Error()
	} else {
		x.Observed = o
		x.Verdict = notePrior(*d, x.Verdict, o, r.cfg.Policy)
		x.Actions, x.Pending = PlanVerdict(x.Verdict, o, r.cfg.Policy)
	}
	if x.Audit, err = r.cfg.Store.AuditOf(ctx, projectID, 20); err != nil {
		return nil, fmt.Errorf("explain %s: %w", projectID, err)
	}
	return x, nil
}

// Release lifts enforcement from a project for the rest of the current period: it records the
// release (state and audit), then runs a cycle for that project alone, which restores it in
// enforce mode. A new period ends the release.
func (r *Reconciler) Release(ctx context.Context, projectID string) (*Report, error) {
	if !neon.ValidID(projectID) {
		return nil, fmt.Errorf("release: project id %q does not look like a Neon project id", projectID)
	}
	now := r.cfg.Now().UTC()
	states, err := r.cfg.Store.States(ctx)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	m := Memory{Level: LevelOK}
	if s, ok := states[projectID]; ok {
		m = memoryOf(s)
	}
	period := plans.PeriodStart(now)
	if !m.PeriodStart.Equal(period) {
		m = Memory{Level: LevelOK, Plan: m.Plan, Seen: m.Seen}
	}
	m.Known, m.PeriodStart, m.Released = true, period, true
	if err := r.cfg.Store.WriteStates(ctx, []State{stateOf(projectID, m, now)}); err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	rec := AuditRecord{At: now, CycleID: "release", ProjectID: projectID, Plan: m.Plan, Level: m.Level, Action: AuditDecision,
		Reason: string(ReasonRelease), Mode: r.cfg.Policy.Mode, After: "released until " + plans.PeriodEnd(now).Format(time.RFC3339),
		Outcome: OutcomeRecorded}
	if err := r.cfg.Store.InsertAudit(ctx, []AuditRecord{rec}); err != nil {
		return nil, fmt.Errorf("release %s: %w", projectID, err)
	}
	return r.Cycle(ctx, CycleOptions{Only: []string{projectID}})
}
