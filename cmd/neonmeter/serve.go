package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// ServeCommand runs the scheduled loops and serves /metrics and /healthz.
type ServeCommand struct{ *Env }

func (c *ServeCommand) Synopsis() string {
	return "run the scheduled cycle (accounts sync, sweep, billing, enforcement, retention) and serve /metrics"
}

func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	initial := fs.Bool("initial-sweep", true, "run one sweep at start-up instead of waiting for the schedule")
	migrate := fs.Bool("migrate", true, "apply schema migrations at start-up (idempotent)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter serve [--initial-sweep=true] [--migrate=true]

Runs a cycle on NEONMETER_COLLECT_SCHEDULE (cron, UTC; default minute 20 of every hour), never
two at once: an accounts sync from Stripe (when NEONMETER_STRIPE_API_KEY is set), a collection
sweep, then, after a successful sweep: a billing push to Stripe (with a Stripe key and a plan
catalog), enforcement of the plans in NEONMETER_PLANS_FILE (in NEONMETER_ENFORCEMENT_MODE,
dry-run by default; skipped without a catalog) and retention (partitions older than
NEONMETER_RETENTION_MONTHS are dropped). Only one serve may run per database. Serves Prometheus metrics on
http://NEONMETER_LISTEN_ADDR/metrics and a health check on /healthz. Stops gracefully on SIGINT
or SIGTERM, letting a running cycle end.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.logger(cfg)
	schedule, err := cron.ParseStandard(cfg.CollectSchedule)
	if err != nil {
		return usagef("NEONMETER_COLLECT_SCHEDULE %q: %v", cfg.CollectSchedule, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "neonmeter_build_info", Help: "Build version; always 1."}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	reg.MustRegister(buildInfo)

	client, conn, err := openNeonAndClickHouse(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *migrate {
		if _, err := schema.Migrate(ctx, conn, cfg.ClickHouseDB, log); err != nil {
			return err
		}
	}
	metrics, err := collector.NewMetrics(reg, time.Now)
	if err != nil {
		return err
	}
	col, err := newCollector(cfg, client, conn, metrics, log, nil)
	if err != nil {
		return usageError{err}
	}
	store := collectorstore.New(conn, cfg.ClickHouseDB)
	feed := collector.Feed{OrgID: cfg.NeonOrgID, Endpoint: collector.Endpoint(cfg.NeonConsumption), Granularity: collector.GranularityHourly}
	if wm, ok, err := store.Watermark(ctx, feed); err != nil {
		return fmt.Errorf("read watermark: %w", err)
	} else if ok {
		metrics.SetWatermark(collector.Endpoint(cfg.NeonConsumption), wm)
	}

	d := newDaemon(log, col, reg)
	if d.before, d.after, err = cycleSteps(cfg, client, conn, reg, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", d.healthz)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "schedule", cfg.CollectSchedule, "org_id", cfg.NeonOrgID)

	sched := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{log}))
	sched.Schedule(schedule, cron.FuncJob(func() { d.cycle(ctx) }))
	sched.Start()
	if *initial {
		go d.cycle(ctx)
	}
	<-ctx.Done()
	log.Info("shutting down; waiting for a running cycle to end")
	<-sched.Stop().Done()
	d.wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutCtx)
}

// cycleSteps builds the steps serve runs around each sweep, from what is configured: accounts
// sync and billing need a Stripe key, billing and enforcement a plan catalog.
func cycleSteps(cfg Config, client *neon.Client, conn driver.Conn, reg prometheus.Registerer, log *slog.Logger) (before, after []step, err error) {
	cat, err := servedCatalog(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.StripeAPIKey != "" {
		if cat == nil {
			return nil, nil, usagef("%s_STRIPE_API_KEY is set: accounts sync and billing need a plan catalog (%s_PLANS_FILE)", envPrefix, envPrefix)
		}
		sc := newStripeClient(cfg, "", log) // one client: sync and billing share its connections
		sync, err := newAccountsSyncer(cfg, sc, cat, conn, reg, log)
		if err != nil {
			return nil, nil, err
		}
		before = append(before, step{"accounts_sync", func(ctx context.Context) error {
			_, err := sync.Sync(ctx, false)
			return err
		}})
		bm, err := billing.NewMetrics(reg)
		if err != nil {
			return nil, nil, err
		}
		pusher, err := newPusher(cfg, sc, conn, cat, bm, 0, log)
		if err != nil {
			return nil, nil, err
		}
		after = append(after, step{"billing_push", func(ctx context.Context) error {
			_, err := pusher.Push(ctx, false)
			return err
		}})
	}
	if cat != nil {
		em, err := enforcement.NewMetrics(reg)
		if err != nil {
			return nil, nil, err
		}
		rec, err := newEnforcer(cfg, client, conn, cat, policyFromConfig(cfg), em, log)
		if err != nil {
			return nil, nil, err
		}
		after = append(after, step{"enforce", func(ctx context.Context) error {
			_, err := rec.Cycle(ctx, enforcement.CycleOptions{})
			return err
		}})
	}
	after = append(after, step{"retention", func(ctx context.Context) error {
		dropped, err := schema.DropExpiredPartitions(ctx, conn, cfg.ClickHouseDB, cfg.RetentionMonths, time.Now())
		if len(dropped) > 0 {
			log.Info("retention dropped partitions", "partitions", dropped)
		}
		return err
	}})
	return before, after, nil
}

// servedCatalog loads the plan catalog that billing and enforcement need. Without
// NEONMETER_PLANS_FILE set and the default file absent, serve only collects (nil catalog); a
// catalog named but unreadable or invalid is a configuration error.
func servedCatalog(cfg Config, log *slog.Logger) (*plans.Catalog, error) {
	if _, set := os.LookupEnv(envPrefix + "_PLANS_FILE"); !set {
		if _, err := os.Stat(cfg.PlansFile); errors.Is(err, os.ErrNotExist) {
			log.Warn("no plan catalog: serve collects only (set NEONMETER_PLANS_FILE to enforce plans)", "plans_file", cfg.PlansFile)
			return nil, nil
		}
	}
	return loadCatalog(cfg)
}

// daemon holds serve's loop state: one cycle at a time, and the last sweep for /healthz. A
// cycle runs the steps before the sweep (accounts sync), the sweep, then, if it succeeded, the
// steps after it (retention, and later stages). A failed step is logged and counted; it does not
// stop the others.
type daemon struct {
	log    *slog.Logger
	col    *collector.Collector
	before []step
	after  []step
	steps  *prometheus.CounterVec

	running sync.Mutex     // held by the cycle in progress: one at a time
	cycles  sync.WaitGroup // cycles in progress, for shutdown
	mu      sync.Mutex
	last    collector.Summary
	lastErr error
}

// step is one stage of a serve cycle besides the sweep.
type step struct {
	name string
	run  func(ctx context.Context) error
}

func newDaemon(log *slog.Logger, col *collector.Collector, reg prometheus.Registerer) *daemon {
	d := &daemon{log: log, col: col, steps: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "neonmeter_serve_steps_total",
		Help: "Steps of serve's cycles besides the sweep (accounts sync, retention, …) by result.",
	}, []string{"step", "result"})}
	reg.MustRegister(d.steps)
	return d
}

func (d *daemon) wait() { d.cycles.Wait() }

// cycle runs one cycle unless one is already running (the initial cycle and a scheduled one may
// meet).
func (d *daemon) cycle(ctx context.Context) {
	if !d.running.TryLock() {
		d.log.Warn("cycle skipped: the previous one is still running")
		return
	}
	d.cycles.Add(1)
	defer d.cycles.Done()
	defer d.running.Unlock()
	d.runSteps(ctx, d.before)
	if ctx.Err() != nil {
		return
	}
	sum, err := d.col.Sweep(ctx, collector.Window{})
	d.mu.Lock()
	d.last, d.lastErr = sum, err
	d.mu.Unlock()
	if err != nil {
		d.log.Error("sweep failed", "run_id", sum.RunID, "org_id", sum.OrgID, "err", err)
		return
	}
	d.runSteps(ctx, d.after)
}

func (d *daemon) runSteps(ctx context.Context, steps []step) {
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		if err := s.run(ctx); err != nil {
			d.steps.WithLabelValues(s.name, "failure").Inc()
			d.log.Error("step failed", "step", s.name, "err", err)
			continue
		}
		d.steps.WithLabelValues(s.name, "success").Inc()
	}
}

func (d *daemon) healthz(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	last, lastErr := d.last, d.lastErr
	d.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case last.RunID == "":
		fmt.Fprintln(w, "ok: no sweep finished yet")
	case lastErr != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "last sweep %s failed: %v\n", last.RunID, lastErr)
	default:
		fmt.Fprintf(w, "ok: last sweep %s succeeded, watermark %s\n", last.RunID, last.Watermark.Format(time.RFC3339))
	}
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
