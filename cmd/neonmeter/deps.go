package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/internal/logkey"
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
	accts  []accountClient
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
	if d.leases != nil {
		d.leases.close()
	}
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

// accountClient is one Neon account's client and the orgs it meters.
type accountClient struct {
	neonAccount
	client *neon.Client
}

// NeonAccounts returns a client per Neon account (API key) with its orgs; the default
// account's client is the one Neon returns.
func (d *deps) NeonAccounts() ([]accountClient, error) {
	if d.accts != nil {
		return d.accts, nil
	}
	if err := d.cfg.RequireNeon(true); err != nil {
		return nil, usageError{err}
	}
	var out []accountClient
	for _, a := range d.cfg.neonAccounts() {
		var c *neon.Client
		var err error
		if a.Name == "default" {
			c, err = d.Neon()
		} else {
			c, err = newAccountClient(d.cfg, a.Key, d.reg, d.log)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, accountClient{a, c})
	}
	d.accts = out
	return out, nil
}

// Fleets builds the budgeted collector of each Neon account; m and adjust may be nil.
func (d *deps) Fleets(ctx context.Context, m *collector.Metrics, adjust func(*collector.FleetConfig)) ([]*collector.Fleet, error) {
	accts, err := d.NeonAccounts()
	if err != nil {
		return nil, err
	}
	conn, err := d.ClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	var out []*collector.Fleet
	for _, a := range accts {
		fc, err := fleetConfig(d.cfg, a.Orgs, a.client, conn, m, d.log.With(logkey.Account, a.Name))
		if err != nil {
			return nil, usageError{err}
		}
		if adjust != nil {
			adjust(&fc)
		}
		f, err := collector.NewFleet(fc)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, f)
	}
	return out, nil
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

// Leases returns the jobs' leases, kept in the configured database or in ZooKeeper
// (NEONMETER_LEASE_BACKEND).
func (d *deps) Leases(ctx context.Context) (*jobLeases, error) {
	if d.leases == nil {
		conn, err := d.ClickHouse(ctx)
		if err != nil {
			return nil, err
		}
		if d.leases, err = newJobLeases(d.cfg, conn, d.log); err != nil {
			return nil, err
		}
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

// Collector builds the sweeping collector of the configured org orgID ("" when only one org
// is configured), reading with its account's client; m and adjust may be nil.
func (d *deps) Collector(ctx context.Context, orgID string, m *collector.Metrics, progress func(collector.Progress), adjust func(*collector.Config)) (*collector.Collector, error) {
	accts, err := d.NeonAccounts()
	if err != nil {
		return nil, err
	}
	conn, err := d.ClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	a, org, err := findOrg(accts, orgID)
	if err != nil {
		return nil, err
	}
	cc, err := collectorConfig(d.cfg, a.client, conn, m, d.log, progress)
	if err != nil {
		return nil, usageError{err}
	}
	cc.OrgID, cc.Endpoint = org.ID, org.Endpoint
	if adjust != nil {
		adjust(&cc)
	}
	col, err := collector.New(cc)
	if err != nil {
		return nil, usageError{err}
	}
	return col, nil
}

// wakeRisk sums the requests every Neon client sent on routes that may wake a compute.
func (d *deps) wakeRisk() int64 {
	var n int64
	for _, a := range d.accts {
		n += a.client.Stats().WakeRisk
	}
	return n
}

// findOrg finds a configured org and its account; "" names the only org.
func findOrg(accts []accountClient, orgID string) (accountClient, neonOrg, error) {
	var all []string
	for _, a := range accts {
		for _, o := range a.Orgs {
			if o.ID == orgID {
				return a, o, nil
			}
			all = append(all, o.ID)
		}
	}
	if orgID == "" && len(all) == 1 {
		return accts[0], accts[0].Orgs[0], nil
	}
	if orgID == "" {
		return accountClient{}, neonOrg{}, usagef("%d orgs are configured (%s): name one with --org", len(all), strings.Join(all, ", "))
	}
	return accountClient{}, neonOrg{}, usagef("org %q is not configured (NEONMETER_NEON_ORG_IDS: %s)", orgID, strings.Join(all, ", "))
}

// Pusher builds billing, fenced by the billing lease; m may be nil, and rate overrides the
// configured meter-event pace when positive.
func (d *deps) Pusher(ctx context.Context, m *billing.Metrics, rate float64) (*billing.Pusher, error) {
	var sc *client.API
	cat, leases, err := d.stageParts(ctx, func() (err error) { sc, err = d.Stripe(); return err })
	if err != nil {
		return nil, err
	}
	return newPusher(d.cfg, sc, d.conn, cat, m, rate, d.log, leases.gate(jobBilling))
}

// Enforcer builds enforcement with policy pol; m may be nil. With writes its mutations and
// writes are fenced by the enforcement lease; without, it may only read (enforce explain).
func (d *deps) Enforcer(ctx context.Context, pol enforcement.Policy, m *enforcement.Metrics, writes bool) (*enforcement.Reconciler, error) {
	var nc enforcement.Neon
	cat, leases, err := d.stageParts(ctx, func() (err error) { nc, err = d.enforcementNeon(); return err })
	if err != nil {
		return nil, err
	}
	var f fence
	if writes {
		f = leases.gate(jobEnforcement)
	}
	return newEnforcer(d.cfg, nc, d.conn, cat, pol, m, d.log, f)
}

// enforcementNeon is the Neon enforcement acts through: the one account's client, or, with
// orgs in several accounts, a router sending each call to the account holding the project.
func (d *deps) enforcementNeon() (enforcement.Neon, error) {
	if len(d.cfg.neonAccounts()) <= 1 {
		return d.Neon()
	}
	accts, err := d.NeonAccounts()
	if err != nil {
		return nil, err
	}
	return newNeonRouter(accts), nil
}

// Syncer builds the Stripe accounts sync, fenced by the accounts lease; withMetrics registers
// its metrics on the registry (serve).
func (d *deps) Syncer(ctx context.Context, withMetrics bool) (*accounts.Syncer, error) {
	var sc *client.API
	cat, leases, err := d.stageParts(ctx, func() (err error) { sc, err = d.Stripe(); return err })
	if err != nil {
		return nil, err
	}
	var reg prometheus.Registerer
	if withMetrics {
		reg = d.reg
	}
	return newAccountsSyncer(d.cfg, sc, cat, d.conn, reg, d.log, leases.gate(jobAccounts))
}

// stageParts gets what a stage builder needs besides its outbound client, in the order their
// errors are reported: the plan catalog, the client (built by client), then the leases.
func (d *deps) stageParts(ctx context.Context, client func() error) (*plans.Catalog, *jobLeases, error) {
	cat, err := d.Catalog()
	if err != nil {
		return nil, nil, err
	}
	if err := client(); err != nil {
		return nil, nil, err
	}
	leases, err := d.Leases(ctx)
	if err != nil {
		return nil, nil, err
	}
	return cat, leases, nil
}
