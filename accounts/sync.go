package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/retry"
	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/plans"
)

// DefaultUnmappedWindow is how far back usage makes a project count as metered when looking
// for projects nobody owns.
const DefaultUnmappedWindow = 7 * 24 * time.Hour

// writeBatch caps the rows of one insert.
const writeBatch = 10_000

// EndOfTime is later than any change: "the latest state" is the state at EndOfTime. (DateTime
// ends in 2106.)
func EndOfTime() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }

// Config is what a Syncer needs. Stripe, Store and Catalog are required.
type Config struct {
	// Stripe is the client every request goes through (see NewStripeClient); package-level
	// stripe-go functions are never used.
	Stripe *client.API
	// Store holds the account history (accounts/chstore in production).
	Store   Store
	Catalog *plans.Catalog
	// DefaultPlan applies to projects nobody owns and to customers without a plan in force.
	// Empty means the catalog's first plan.
	DefaultPlan string
	Logger      *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RetryBase, RetryMax and MaxAttempts bound retries of one list page (backoff with jitter,
	// internal/retry); zero means DefaultRetryBase, DefaultRetryMax and DefaultMaxAttempts.
	RetryBase, RetryMax time.Duration
	MaxAttempts         int
	// UnmappedWindow is how far back usage counts when reporting unmapped projects; zero means
	// DefaultUnmappedWindow.
	UnmappedWindow time.Duration
}

// Syncer records the project → (customer, plan) mapping Stripe holds.
type Syncer struct {
	cfg Config
	log *slog.Logger
}

// NewSyncer checks cfg and fills its defaults.
func NewSyncer(cfg Config) (*Syncer, error) {
	var errs []error
	if cfg.Stripe == nil {
		errs = append(errs, errors.New("no Stripe client"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("no account store"))
	}
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("no plan catalog"))
	} else {
		p, err := DefaultPlan(cfg.Catalog, cfg.DefaultPlan)
		errs = append(errs, err)
		cfg.DefaultPlan = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("accounts sync: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UnmappedWindow <= 0 {
		cfg.UnmappedWindow = DefaultUnmappedWindow
	}
	return &Syncer{cfg: cfg, log: cfg.Logger.With(logkey.Component, "accounts")}, nil
}

// DefaultPlan checks the configured default plan against the catalog; empty picks the
// catalog's first plan.
func DefaultPlan(cat *plans.Catalog, name string) (string, error) {
	if name == "" {
		if len(cat.Plans) == 0 {
			return "", errors.New("the plan catalog has no plans")
		}
		return cat.Plans[0].Name, nil
	}
	if _, ok := cat.Plan(name); !ok {
		return "", fmt.Errorf("default plan %q is not in the plan catalog (plans: %v)", name, cat.Names())
	}
	return name, nil
}

// SyncResult says what a sync saw and recorded.
type SyncResult struct {
	RunID      string
	ObservedAt time.Time
	DryRun     bool
	// Customers, Subscriptions and Projects counted in Stripe (projects named by customers).
	Customers, Subscriptions, Projects int
	// Changes were written (or, in a dry run, would have been), in project and time order.
	Changes []ProjectChange
	// Problems in Stripe's data; the projects concerned were left alone.
	Problems []Problem
	// Unmapped are projects with recent usage that nobody owns.
	Unmapped []string
}

// Sync reads Stripe, derives every project's timeline, and appends the changes the stored
// history lacks. With dryRun it writes nothing. Stripe errors are retried per page; a sync
// that fails writes nothing. A failure is returned, not logged: the caller handles it.
func (s *Syncer) Sync(ctx context.Context, dryRun bool) (SyncResult, error) {
	start := time.Now()
	res, err := s.sync(ctx, dryRun)
	s.observe(res, err, dryRun, time.Since(start))
	if err != nil {
		return res, err
	}
	log := s.log.With(logkey.RunID, res.RunID)
	for _, p := range res.Problems {
		log.Warn("stripe data problem", logkey.CustomerID, p.CustomerID, "subscription_id", p.SubscriptionID, logkey.ProjectID, p.ProjectID, "problem", p.Message)
	}
	log.Info("account sync done", "customers", res.Customers, "subscriptions", res.Subscriptions, "projects", res.Projects,
		"changes", len(res.Changes), "problems", len(res.Problems), "unmapped", len(res.Unmapped), "dry_run", dryRun,
		"duration", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// observe records a finished sync in the metrics.
func (s *Syncer) observe(res SyncResult, err error, dryRun bool, took time.Duration) {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	if err != nil {
		m.runs.WithLabelValues(resultFailure).Inc()
		return
	}
	m.runs.WithLabelValues(resultSuccess).Inc()
	m.lastSuccess.Set(float64(res.ObservedAt.Unix()))
	m.problems.Set(float64(len(res.Problems)))
	if !dryRun {
		m.changes.WithLabelValues(string(SourceStripe)).Add(float64(len(res.Changes)))
	}
}

func (s *Syncer) sync(ctx context.Context, dryRun bool) (SyncResult, error) {
	now := s.cfg.Now().UTC().Truncate(time.Second)
	res := SyncResult{RunID: runid.New("accounts", now), ObservedAt: now, DryRun: dryRun}
	snap, err := FetchSnapshot(ctx, s.cfg.Stripe, s.retry(res.RunID))
	if err != nil {
		return res, fmt.Errorf("accounts sync %s: stripe: %w", res.RunID, err)
	}
	d := Derive(snap, s.cfg.Catalog)
	res.Customers, res.Subscriptions, res.Projects, res.Problems = len(snap.Customers), len(snap.Subscriptions), len(d.Projects), d.Problems
	stored, err := s.cfg.Store.At(ctx, nil, EndOfTime())
	if err != nil {
		return res, fmt.Errorf("accounts sync %s: %w", res.RunID, err)
	}
	res.Changes = Diff(stored, d, now)
	if !dryRun {
		if err := write(ctx, s.cfg.Store, res.Changes, SourceStripe, res.RunID, now); err != nil {
			return res, fmt.Errorf("accounts sync %s: %w", res.RunID, err)
		}
	}
	if err := s.unmapped(ctx, &res, now, dryRun); err != nil {
		return res, fmt.Errorf("accounts sync %s: unmapped projects: %w", res.RunID, err)
	}
	return res, nil
}

// retry is the retry policy of one sync's list pages, logging and counting each retry.
func (s *Syncer) retry(runID string) Retry {
	return Retry{Backoff: retry.Backoff{Min: s.cfg.RetryBase, Max: s.cfg.RetryMax}, MaxAttempts: s.cfg.MaxAttempts, OnRetry: func(object string, err error) {
		s.log.Warn("stripe list page failed, retrying", logkey.RunID, runID, "object", object, logkey.Err, err)
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.retries.WithLabelValues(object).Inc()
		}
	}}
}

// unmapped sets res.Unmapped to the projects with recent usage that nobody owns, and the
// mapped and unmapped gauges after a sync that wrote.
func (s *Syncer) unmapped(ctx context.Context, res *SyncResult, now time.Time, dryRun bool) error {
	from, to := now.Add(-s.cfg.UnmappedWindow), now.Add(time.Hour)
	var err error
	if res.Unmapped, err = Unmapped(ctx, s.cfg.Store, from, to, EndOfTime()); err != nil {
		return err
	}
	m := s.cfg.Metrics
	if m == nil || dryRun {
		return nil
	}
	// The gauges are best effort: a failed count leaves them as they were.
	if used, err := s.cfg.Store.UsageProjects(ctx, from, to); err == nil {
		m.projects.WithLabelValues("mapped").Set(float64(len(used) - len(res.Unmapped)))
		m.projects.WithLabelValues("unmapped").Set(float64(len(res.Unmapped)))
	}
	return nil
}

// write inserts changes in batches, all with one version (the write's time in nanoseconds),
// so a later write of the same (project, valid_from) replaces an earlier one.
func write(ctx context.Context, store Store, changes []ProjectChange, source Source, runID string, now time.Time) error {
	version := uint64(time.Now().UnixNano())
	for start := 0; start < len(changes); start += writeBatch {
		chunk := changes[start:min(start+writeBatch, len(changes))]
		records := make([]Record, len(chunk))
		for i, c := range chunk {
			records[i] = Record{ProjectID: c.ProjectID, ValidFrom: c.At, CustomerID: c.CustomerID, Plan: c.Plan,
				Source: source, SubscriptionID: c.SubscriptionID, Basis: c.Basis, RecordedAt: now, RunID: runID, Version: version}
		}
		if err := store.Insert(ctx, records); err != nil {
			return err
		}
	}
	return nil
}
