package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
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

// openClickHouse connects to the configured server; the database may not exist yet.
func openClickHouse(ctx context.Context, cfg Config) (driver.Conn, error) {
	return schema.Open(ctx, schema.Options{
		Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDB, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePass.Reveal(), TLS: cfg.ClickHouseTLS, DialTimeout: 10 * time.Second,
	})
}

// openNeonAndClickHouse builds the Neon client and connects to ClickHouse, the pair every
// command that collects or enforces starts from; the caller closes the connection.
func openNeonAndClickHouse(ctx context.Context, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*neon.Client, driver.Conn, error) {
	client, err := newNeonClient(cfg, reg, log)
	if err != nil {
		return nil, nil, err
	}
	conn, err := openClickHouse(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return client, conn, nil
}

// newNeonClient builds the Neon client; reg may be nil.
func newNeonClient(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*neon.Client, error) {
	if err := cfg.RequireNeon(true); err != nil {
		return nil, usageError{err}
	}
	retries := cfg.NeonMaxRetries
	if retries == 0 {
		retries = -1 // the client reads 0 as "default"; the setting's 0 means no retries
	}
	c, err := neon.NewClient(neon.Config{
		BaseURL: cfg.NeonAPIURL, APIKey: cfg.NeonAPIKey.Reveal(), RequestTimeout: cfg.NeonTimeout,
		ConsumptionRatePerMin: cfg.NeonConsumRate, ConsumptionBurst: cfg.NeonConsumBurst,
		GeneralRatePerMin: cfg.NeonGeneralRate, GeneralBurst: cfg.NeonGeneralBurst,
		MaxRetries: retries, Registerer: reg, Logger: log,
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("neon client: %w", err)}
	}
	return c, nil
}

// newCollector wires a collector for the configured org and endpoint.
func newCollector(cfg Config, src collector.ConsumptionReader, conn driver.Conn, m *collector.Metrics, log *slog.Logger, progress func(collector.Progress)) (*collector.Collector, error) {
	return collector.New(collector.Config{
		Consumption: src, Store: collectorstore.New(conn, cfg.ClickHouseDB),
		OrgID: cfg.NeonOrgID, Endpoint: collector.Endpoint(cfg.NeonConsumption),
		Lookback: cfg.CollectLookback, Provisional: cfg.ProvisionalWindow,
		Logger: log, Metrics: m, Progress: progress,
	})
}

// newStripeClient builds the one Stripe client a command uses; key overrides the configured key
// when not empty (the demo's stripe-mock key).
func newStripeClient(cfg Config, key string, log *slog.Logger) *client.API {
	if key == "" {
		key = cfg.StripeAPIKey.Reveal()
	}
	return accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: cfg.StripeAPIURL, Timeout: cfg.StripeTimeout, Logger: log})
}

// newPusher wires billing to Stripe through sc and to ClickHouse; m may be nil. rate overrides
// the configured request rate when positive.
func newPusher(cfg Config, sc *client.API, conn driver.Conn, cat *plans.Catalog, m *billing.Metrics, rate float64, log *slog.Logger) (*billing.Pusher, error) {
	if rate <= 0 {
		rate = cfg.BillingRate
	}
	p, err := billing.New(billing.Config{Sink: billing.NewStripeSink(sc), Store: billingstore.New(conn, cfg.ClickHouseDB),
		Accounts: accountsstore.New(conn, cfg.ClickHouseDB), Catalog: cat,
		DefaultPlan: cfg.DefaultPlan, Lookback: cfg.BillingLookback, Provisional: cfg.ProvisionalWindow, Grace: cfg.BillingGrace,
		Rate: rate, Concurrency: cfg.BillingWorkers, Logger: log, Metrics: m})
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// newEnforcer wires enforcement to Neon and ClickHouse with policy pol; m may be nil.
func newEnforcer(cfg Config, client *neon.Client, conn driver.Conn, cat *plans.Catalog, pol enforcement.Policy, m *enforcement.Metrics, log *slog.Logger) (*enforcement.Reconciler, error) {
	r, err := enforcement.New(enforcement.Config{Neon: client, Store: enforcementstore.New(conn, cfg.ClickHouseDB),
		Accounts: accountsstore.New(conn, cfg.ClickHouseDB), Catalog: cat, DefaultPlan: cfg.DefaultPlan, Policy: pol,
		Logger: log, Metrics: m})
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}
