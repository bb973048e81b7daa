package collector

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/neon"
)

// FleetNeon is the part of the Neon client a budgeted cycle uses: the project list (general
// bucket) and the consumption routes. None of these calls wakes a compute.
type FleetNeon interface {
	ConsumptionReader
	ListProjects(ctx context.Context, q neon.ListProjectsQuery) iter.Seq2[*neon.ProjectsPage, error]
}

// FleetOrg is one organization of the Neon account a Fleet collects.
type FleetOrg struct {
	ID       string
	Endpoint Endpoint // default v2
	// MetricNames are the metrics requested; default every metric of the endpoint.
	MetricNames []string
}

// FleetConfig holds a Fleet's dependencies and tunables. One Fleet serves one Neon account:
// its orgs share the account's consumption limit, hence one budget.
type FleetConfig struct {
	Orgs  []FleetOrg
	Neon  FleetNeon
	Store FleetStore
	// CallsPerCycle is the consumption budget of one cycle: HTTP attempts on the consumption
	// routes, retries included (NEONMETER_NEON_CONSUMPTION_RATE × the cycle's interval).
	// Required.
	CallsPerCycle int
	// BatchSize is projects per call (default and maximum 100).
	BatchSize int
	// Lookback is what the rolling sweep re-reads before a project's complete hours, and where
	// a project without progress starts when its org has no watermark (default 48h).
	Lookback time.Duration
	// Provisional is the span of most recent hours Neon may still revise (default 2h): the
	// priority tiers re-read it, and a value missing there is not yet a zero.
	Provisional time.Duration
	// PeriodEnd returns the end of the billing period holding t (plans.PeriodEnd); nil means
	// no closing tier.
	PeriodEnd func(t time.Time) time.Time
	// PeriodGrace is Stripe's invoice grace after a period ends (billing's grace, default 1h):
	// from a period's end until then, completing every project's hours of the closed period
	// comes before every other tier.
	PeriodGrace time.Duration
	// FlushRows is how many changed rows are buffered before an insert (default 20,000).
	FlushRows int
	// Bounds are the per-metric ceilings of one project-hour (default DefaultBounds()).
	Bounds Bounds
	// MinProjectsRatio and AcceptProjectDrop: an org listing fewer projects than this share of
	// its last successful run's is not collected that cycle (default 0.5), unless accepted.
	MinProjectsRatio  float64
	AcceptProjectDrop bool
	// Deadline bounds a cycle, listing included (default 45m), of Now's time; Speed as in
	// Config.
	Deadline time.Duration
	Speed    float64
	// Host and PID are recorded with each run (default this host and process).
	Host string
	PID  int
	// Now is the clock (default time.Now).
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics // optional
}

// Fleet runs budgeted collection cycles for the orgs of one Neon account.
type Fleet struct {
	cfg FleetConfig
	log *slog.Logger
}

// NewFleet validates cfg and returns a Fleet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	var errs []error
	if cfg.Neon == nil {
		errs = append(errs, errors.New("collector fleet: Neon is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("collector fleet: Store is required"))
	}
	if cfg.CallsPerCycle <= 0 {
		errs = append(errs, fmt.Errorf("collector fleet: CallsPerCycle %d: a cycle needs a positive budget of consumption calls", cfg.CallsPerCycle))
	}
	errs = append(errs, cfg.orgDefaults()...)
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxBatch {
		cfg.BatchSize = MaxBatch
	}
	if cfg.Provisional < 0 || cfg.PeriodGrace < 0 {
		errs = append(errs, fmt.Errorf("collector fleet: negative Provisional %v or PeriodGrace %v", cfg.Provisional, cfg.PeriodGrace))
	}
	if cfg.PeriodGrace == 0 {
		cfg.PeriodGrace = time.Hour
	}
	// The settings a cycle shares with a sweep take a sweep's defaults and checks.
	shared := Config{Lookback: cfg.Lookback, FlushRows: cfg.FlushRows, Bounds: cfg.Bounds, MinProjectsRatio: cfg.MinProjectsRatio,
		Deadline: cfg.Deadline, Speed: cfg.Speed, Host: cfg.Host, PID: cfg.PID, Now: cfg.Now, Logger: cfg.Logger}
	errs = append(errs, shared.runDefaults()...)
	cfg.Lookback, cfg.FlushRows, cfg.Bounds, cfg.MinProjectsRatio = shared.Lookback, shared.FlushRows, shared.Bounds, shared.MinProjectsRatio
	cfg.Deadline, cfg.Speed, cfg.Host, cfg.PID, cfg.Now, cfg.Logger = shared.Deadline, shared.Speed, shared.Host, shared.PID, shared.Now, shared.Logger
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Fleet{cfg: cfg, log: cfg.Logger.With(logkey.Component, "collector")}, nil
}

// orgDefaults checks the orgs and fills their endpoints and metrics.
func (cfg *FleetConfig) orgDefaults() []error {
	var errs []error
	switch {
	case len(cfg.Orgs) == 0:
		errs = append(errs, errors.New("collector fleet: Orgs is empty; name at least one organization"))
	case len(cfg.Orgs) > 1<<16:
		errs = append(errs, fmt.Errorf("collector fleet: %d orgs, at most %d", len(cfg.Orgs), 1<<16))
	}
	orgs := make([]FleetOrg, len(cfg.Orgs))
	for i, o := range cfg.Orgs {
		if o.Endpoint == "" {
			o.Endpoint = EndpointV2
		}
		switch {
		case !neon.ValidID(o.ID):
			errs = append(errs, fmt.Errorf("collector fleet: org id %q does not match ^[a-z0-9-]{1,60}$", o.ID))
		case !o.Endpoint.Valid():
			errs = append(errs, fmt.Errorf("collector fleet: org %s: unknown endpoint %q (want %s or %s)", o.ID, o.Endpoint, EndpointV2, EndpointLegacy))
		case slices.ContainsFunc(orgs[:i], func(p FleetOrg) bool { return p.ID == o.ID }):
			errs = append(errs, fmt.Errorf("collector fleet: org %s listed twice", o.ID))
		}
		if len(o.MetricNames) == 0 {
			o.MetricNames = neon.V2Metrics()
			if o.Endpoint == EndpointLegacy {
				o.MetricNames = neon.LegacyMetrics()
			}
		}
		orgs[i] = o
	}
	cfg.Orgs = orgs
	return errs
}

// ClosingPeriodEnd returns the end of the billing period that closed at or before now's last
// complete hour and whose grace has not passed yet, given the period rule periodEnd (nil: none).
func ClosingPeriodEnd(now time.Time, periodEnd func(time.Time) time.Time, grace time.Duration) (time.Time, bool) {
	if periodEnd == nil {
		return time.Time{}, false
	}
	end := periodEnd(now.Add(-grace)).UTC()
	if end.After(now.UTC().Truncate(time.Hour)) {
		return time.Time{}, false
	}
	return end, true
}
