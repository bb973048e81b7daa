package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// The builders below make one dependency each from the configuration. Commands get them
// through deps (deps.go), which builds each at most once; tests call them to wire one part.

// openClickHouse connects to the configured server, or to the first answering replica of the
// configured cluster; the database may not exist yet.
func openClickHouse(ctx context.Context, cfg Config) (driver.Conn, error) {
	return schema.Open(ctx, schema.Options{
		Addr: cfg.ClickHouseAddr, Cluster: cfg.ClickHouseCluster, Database: cfg.ClickHouseDB, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePass.Reveal(), TLS: cfg.ClickHouseTLS, DialTimeout: 10 * time.Second,
	})
}

// newNeonClient builds the Neon client of the default account; reg may be nil.
func newNeonClient(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*neon.Client, error) {
	if err := cfg.RequireNeon(true); err != nil {
		return nil, usageError{err}
	}
	return newAccountClient(cfg, cfg.NeonAPIKey, reg, log)
}

// newAccountClient builds the Neon client reading with key: one per Neon account, each with
// its own pacing, as Neon's rate limits are per account. Clients share reg's series.
func newAccountClient(cfg Config, key Secret, reg prometheus.Registerer, log *slog.Logger) (*neon.Client, error) {
	retries := cfg.NeonMaxRetries
	if retries == 0 {
		retries = -1 // the client reads 0 as "default"; the setting's 0 means no retries
	}
	_, speed := cfg.clock() // on a simulated clock, pace by simulated minutes
	c, err := neon.NewClient(neon.Config{
		BaseURL: cfg.NeonAPIURL, APIKey: key.Reveal(), RequestTimeout: cfg.NeonTimeout,
		ConsumptionRatePerMin: cfg.NeonConsumRate * speed, ConsumptionBurst: cfg.NeonConsumBurst,
		GeneralRatePerMin: cfg.NeonGeneralRate * speed, GeneralBurst: cfg.NeonGeneralBurst,
		MaxRetries: retries, MaxResponseBytes: int64(cfg.NeonMaxResponseMB) << 20, Registerer: reg, Logger: log,
		// Operations run on Neon's clock: on a simulated one, poll once per simulated second.
		OperationPollInterval: max(time.Millisecond, time.Duration(float64(neon.DefaultOperationPoll)/speed)),
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("neon client: %w", err)}
	}
	return c, nil
}

// collectorConfig is the collector's configuration from the settings, for a command to adjust.
func collectorConfig(cfg Config, src collector.ConsumptionReader, conn driver.Conn, m *collector.Metrics, log *slog.Logger, progress func(collector.Progress)) (collector.Config, error) {
	bounds, err := collector.WithOverrides(cfg.CollectBounds)
	if err != nil {
		return collector.Config{}, fmt.Errorf("%s_COLLECT_VALUE_BOUNDS: %w", envPrefix, err)
	}
	now, speed := cfg.clock()
	return collector.Config{
		Now: now, Consumption: src, Store: redactedRuns{collectorstore.New(conn, cfg.ClickHouseDB), cfg.redactor()},
		OrgID: cfg.NeonOrgID, Endpoint: collector.Endpoint(cfg.NeonConsumption),
		Lookback: cfg.CollectLookback, Provisional: cfg.ProvisionalWindow,
		Bounds: bounds, MinProjectsRatio: cfg.CollectMinRatio, Deadline: cfg.CollectDeadline, Speed: speed,
		Logger: log, Metrics: m, Progress: progress,
	}, nil
}

// fleetConfig is the budgeted collector of one Neon account (its orgs share the consumption
// budget), for a command to adjust before collector.NewFleet.
func fleetConfig(cfg Config, orgs []neonOrg, src collector.FleetNeon, conn driver.Conn, m *collector.Metrics, log *slog.Logger) (collector.FleetConfig, error) {
	bounds, err := collector.WithOverrides(cfg.CollectBounds)
	if err != nil {
		return collector.FleetConfig{}, fmt.Errorf("%s_COLLECT_VALUE_BOUNDS: %w", envPrefix, err)
	}
	budget, err := cycleBudget(cfg)
	if err != nil {
		return collector.FleetConfig{}, err
	}
	now, speed := cfg.clock()
	return collector.FleetConfig{
		Orgs: fleetOrgs(orgs), Neon: src, Store: redactedRuns{collectorstore.New(conn, cfg.ClickHouseDB), cfg.redactor()},
		CallsPerCycle: budget, Lookback: cfg.CollectLookback, Provisional: cfg.ProvisionalWindow,
		PeriodEnd: plans.PeriodEnd, PeriodGrace: cfg.BillingGrace, Bounds: bounds,
		MinProjectsRatio: cfg.CollectMinRatio, Deadline: cfg.CollectDeadline, Speed: speed, Now: now, Logger: log, Metrics: m,
	}, nil
}

// cycleBudget is the consumption calls one budgeted cycle may spend: the account's rate
// (NEONMETER_NEON_CONSUMPTION_RATE per minute) over the cycle's span, the schedule's shortest
// interval or the deadline if shorter, so cycles never outspend the account's limit.
func cycleBudget(cfg Config) (int, error) {
	sched, err := cron.ParseStandard(cfg.CollectSchedule)
	if err != nil {
		return 0, usagef("%s_COLLECT_SCHEDULE %q: %v", envPrefix, cfg.CollectSchedule, err)
	}
	span := min(shortestInterval(sched, time.Now()), cfg.CollectDeadline)
	return max(1, int(cfg.NeonConsumRate*span.Minutes())), nil
}

// newStripeClient builds the one Stripe client a command uses; key overrides the configured key
// when not empty (the demo's stripe-mock key).
func newStripeClient(cfg Config, key string, log *slog.Logger) *client.API {
	if key == "" {
		key = cfg.StripeAPIKey.Reveal()
	}
	return accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: cfg.StripeAPIURL, Timeout: cfg.StripeTimeout, Logger: log,
		Redactor: cfg.redactor()})
}

// newPusher wires billing to Stripe through sc and to ClickHouse; m may be nil. rate overrides
// the configured request rate when positive. f (the billing lease's gate) fences every send and
// write; nil only for work that writes nothing.
func newPusher(cfg Config, sc *client.API, conn driver.Conn, cat *plans.Catalog, m *billing.Metrics, rate float64, log *slog.Logger, f fence) (*billing.Pusher, error) {
	p, err := billing.New(pusherConfig(cfg, sc, conn, cat, m, rate, log, f))
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// pusherConfig is newPusher's billing configuration, for tests to wrap its parts.
func pusherConfig(cfg Config, sc *client.API, conn driver.Conn, cat *plans.Catalog, m *billing.Metrics, rate float64, log *slog.Logger, f fence) billing.Config {
	if rate <= 0 {
		rate = cfg.BillingRate
	}
	sink := billing.NewStripeSink(sc)
	now, _ := cfg.clock()
	c := billing.Config{Now: now, Sink: sink, Reader: sink, Store: billingstore.New(conn, cfg.ClickHouseDB),
		Accounts: accountsstore.New(conn, cfg.ClickHouseDB), Catalog: cat,
		DefaultPlan: cfg.DefaultPlan, Lookback: cfg.BillingLookback, Provisional: cfg.ProvisionalWindow, Grace: cfg.BillingGrace,
		Rate: rate, APIRate: cfg.BillingAPIRate, Concurrency: cfg.BillingWorkers, Logger: log, Metrics: m}
	if f != nil {
		c.Sink, c.Store = fencedSink{sink, f}, fencedBillingStore{c.Store, f}
	}
	return c
}

// newEnforcer wires enforcement to Neon and ClickHouse with policy pol; m may be nil. f (the
// enforcement lease's gate) fences every mutation of Neon and every write; nil only for work
// that writes nothing.
func newEnforcer(cfg Config, client enforcement.Neon, conn driver.Conn, cat *plans.Catalog, pol enforcement.Policy, m *enforcement.Metrics, log *slog.Logger, f fence) (*enforcement.Reconciler, error) {
	var (
		n     enforcement.Neon  = client
		store enforcement.Store = redactedAudit{enforcementstore.New(conn, cfg.ClickHouseDB), cfg.redactor()}
	)
	if f != nil {
		n, store = fencedNeon{n, f}, fencedEnforcementStore{store, f}
	}
	now, _ := cfg.clock()
	r, err := enforcement.New(enforcement.Config{Now: now, Neon: n, Store: store,
		Accounts: accountsstore.New(conn, cfg.ClickHouseDB), Catalog: cat, DefaultPlan: cfg.DefaultPlan, Policy: pol,
		Logger: log, Metrics: m})
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}
