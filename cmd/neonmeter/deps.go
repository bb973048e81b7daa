package main

import (
	"context"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

// deps is the one place a command's dependencies are built, each at most once and always in
// the same order: configuration → clients (Neon, ClickHouse, Stripe, plan catalog, leases) →
// stages (collector, pusher, enforcer, accounts syncer). A command asks for what it uses and
// nothing else is built (migrate never builds a Neon client); close releases the connection.
// The builders it calls (newNeonClient, newPusher, …) stay plain functions for tests.
type deps struct {
	cfg Config
	log *slog.Logger
	reg prometheus.Registerer // serve's registry; a private one for other commands

	stripeKey string // overrides the configured key (the demo's stripe-mock key)

	neon   *neon.Client
	conn   driver.Conn
	stripe *client.API
	cat    *plans.Catalog
	leases *jobLeases
}

// deps starts a command's dependencies from its configuration; reg may be nil.
func (e *Env) deps(cfg Config, reg prometheus.Registerer) *deps {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &deps{cfg: cfg, log: e.logger(cfg), reg: reg}
}

func (d *deps) close() {
	if d.conn != nil {
		d.conn.Close()
	}
}

// Neon returns the Neon client; it needs the Neon key and org.
func (d *deps) Neon() (*neon.Client, error) {
	if d.neon == nil {
		c, err := newNeonClient(d.cfg, d.reg, d.log)
		if err != nil {
			return nil, err
		}
		d.neon = c
	}
	return d.neon, nil
}

// ClickHouse returns the connection to the configured server.
func (d *deps) ClickHouse(ctx context.Context) (driver.Conn, error) {
	if d.conn == nil {
		conn, err := openClickHouse(ctx, d.cfg)
		if err != nil {
			return nil, err
		}
		d.conn = conn
	}
	return d.conn, nil
}

// Migrated returns the connection once the database is migrated, and otherwise says to run
// migrate.
func (d *deps) Migrated(ctx context.Context) (driver.Conn, error) {
	conn, err := d.ClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	return conn, requireMigrated(ctx, conn, d.cfg.ClickHouseDB)
}

// Stripe returns the one Stripe client of the command; it needs the Stripe key.
func (d *deps) Stripe() (*client.API, error) {
	if d.stripe == nil {
		if d.cfg.StripeAPIKey == "" && d.stripeKey == "" {
			return nil, usagef("%s_STRIPE_API_KEY (or %s_STRIPE_API_KEY_FILE) is required", envPrefix, envPrefix)
		}
		d.stripe = newStripeClient(d.cfg, d.stripeKey, d.log)
	}
	return d.stripe, nil
}

// Catalog returns the plan catalog of NEONMETER_PLANS_FILE.
func (d *deps) Catalog() (*plans.Catalog, error) {
	if d.cat == nil {
		cat, err := loadCatalog(d.cfg)
		if err != nil {
			return nil, err
		}
		d.cat = cat
	}
	return d.cat, nil
}

// Leases returns the jobs' leases, kept in the configured database.
func (d *deps) Leases(ctx context.Context) (*jobLeases, error) {
	if d.leases == nil {
		conn, err := d.ClickHouse(ctx)
		if err != nil {
			return nil, err
		}
		d.leases = newJobLeases(d.cfg, conn, d.log)
	}
	return d.leases, nil
}

// Finance returns finance's store on the migrated database and the cost table of
// NEONMETER_COSTS_FILE (nil when unset), loaded into ClickHouse for margin in SQL.
func (d *deps) Finance(ctx context.Context) (finance.Store, *finance.Costs, error) {
	cat, err := d.Catalog()
	if err != nil {
		return nil, nil, err
	}
	conn, err := d.Migrated(ctx)
	if err != nil {
		return nil, nil, err
	}
	return newFinance(ctx, d.cfg, conn, cat)
}

// Collector builds the collector of the configured org; m may be nil.
func (d *deps) Collector(ctx context.Context, m *collector.Metrics, progress func(collector.Progress)) (*collector.Collector, error) {
	cc, err := d.CollectorConfig(ctx, m, progress)
	if err != nil {
		return nil, err
	}
	col, err := collector.New(cc)
	if err != nil {
		return nil, usageError{err}
	}
	return col, nil
}

// CollectorConfig is Collector's configuration, for a command to adjust before collector.New.
func (d *deps) CollectorConfig(ctx context.Context, m *collector.Metrics, progress func(collector.Progress)) (collector.Config, error) {
	client, err := d.Neon()
	if err != nil {
		return collector.Config{}, err
	}
	conn, err := d.ClickHouse(ctx)
	if err != nil {
		return collector.Config{}, err
	}
	cc, err := collectorConfig(d.cfg, client, conn, m, d.log, progress)
	if err != nil {
		return collector.Config{}, usageError{err}
	}
	return cc, nil
}

// Pusher builds billing, fenced by the billing lease; m may be nil, and rate overrides the
// configured meter-event pace when positive.
func (d *deps) Pusher(ctx context.Context, m *billing.Metrics, rate float64) (*billing.Pusher, error) {
	cat, err := d.Catalog()
	if err != nil {
		return nil, err
	}
	sc, err := d.Stripe()
	if err != nil {
		return nil, err
	}
	leases, err := d.Leases(ctx)
	if err != nil {
		return nil, err
	}
	return newPusher(d.cfg, sc, d.conn, cat, m, rate, d.log, leases.gate(jobBilling))
}

// Enforcer builds enforcement with policy pol; m may be nil. With writes its mutations and
// writes are fenced by the enforcement lease; without, it may only read (enforce explain).
func (d *deps) Enforcer(ctx context.Context, pol enforcement.Policy, m *enforcement.Metrics, writes bool) (*enforcement.Reconciler, error) {
	cat, err := d.Catalog()
	if err != nil {
		return nil, err
	}
	client, err := d.Neon()
	if err != nil {
		return nil, err
	}
	leases, err := d.Leases(ctx)
	if err != nil {
		return nil, err
	}
	var f fence
	if writes {
		f = leases.gate(jobEnforcement)
	}
	return newEnforcer(d.cfg, client, d.conn, cat, pol, m, d.log, f)
}

// Syncer builds the Stripe accounts sync, fenced by the accounts lease; withMetrics registers
// its metrics on the registry (serve).
func (d *deps) Syncer(ctx context.Context, withMetrics bool) (*accounts.Syncer, error) {
	cat, err := d.Catalog()
	if err != nil {
		return nil, err
	}
	sc, err := d.Stripe()
	if err != nil {
		return nil, err
	}
	leases, err := d.Leases(ctx)
	if err != nil {
		return nil, err
	}
	var reg prometheus.Registerer
	if withMetrics {
		reg = d.reg
	}
	return newAccountsSyncer(d.cfg, sc, cat, d.conn, reg, d.log, leases.gate(jobAccounts))
}
