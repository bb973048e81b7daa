package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// openClickHouse connects to the configured server; the database may not exist yet.
func openClickHouse(ctx context.Context, cfg Config) (driver.Conn, error) {
	return schema.Open(ctx, schema.Options{
		Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDB, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePass.Reveal(), TLS: cfg.ClickHouseTLS, DialTimeout: 10 * time.Second,
	})
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
