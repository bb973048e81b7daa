package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// ServeCommand runs the scheduled loops and serves /metrics and /healthz.
type ServeCommand struct{ *Env }

func (c *ServeCommand) Synopsis() string {
	return "run scheduled sweeps and serve /metrics and /healthz"
}

func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	initial := fs.Bool("initial-sweep", true, "run one sweep at start-up instead of waiting for the schedule")
	migrate := fs.Bool("migrate", true, "apply schema migrations at start-up (idempotent)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter serve [--initial-sweep=true] [--migrate=true]

Runs collection sweeps on NEONMETER_COLLECT_SCHEDULE (cron, UTC; default minute 20 of every
hour), never two at once, drops partitions older than NEONMETER_RETENTION_MONTHS after each
successful sweep, and serves Prometheus metrics on http://NEONMETER_LISTEN_ADDR/metrics and a
health check on /healthz. Stops gracefully on SIGINT or SIGTERM, letting a running sweep end.

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

	client, err := newNeonClient(cfg, reg, log)
	if err != nil {
		return err
	}
	conn, err := openClickHouse(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *migrate {
		if _, err := schema.Migrate(ctx, conn, cfg.ClickHouseDB, log); err != nil {
			return err
		}
	}
	metrics := collector.NewMetrics(reg, time.Now)
	col, err := newCollector(cfg, client, conn, metrics, log, nil)
	if err != nil {
		return usageError{err}
	}
	store := collector.NewClickHouseStore(conn, cfg.ClickHouseDB)
	if wm, ok, err := store.Watermark(ctx, cfg.NeonOrgID, cfg.NeonConsumption, "hourly"); err != nil {
		return fmt.Errorf("read watermark: %w", err)
	} else if ok {
		metrics.SetWatermark(collector.Endpoint(cfg.NeonConsumption), wm)
	}

	d := &daemon{log: log, cfg: cfg, col: col, conn: conn}
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
	sched.Schedule(schedule, cron.FuncJob(func() { d.sweep(ctx) }))
	sched.Start()
	if *initial {
		go d.sweep(ctx)
	}
	<-ctx.Done()
	log.Info("shutting down; waiting for a running sweep to end")
	<-sched.Stop().Done()
	d.wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutCtx)
}

// daemon holds serve's loop state: one sweep at a time, and the last outcome for /healthz.
type daemon struct {
	log  *slog.Logger
	cfg  Config
	col  *collector.Collector
	conn driver.Conn

	running sync.Mutex     // held by the sweep in progress: one at a time
	sweeps  sync.WaitGroup // sweeps in progress, for shutdown
	mu      sync.Mutex
	last    collector.Summary
	lastErr error
}

func (d *daemon) wait() { d.sweeps.Wait() }

// sweep runs one sweep unless one is already running (the initial sweep and a scheduled one
// may meet).
func (d *daemon) sweep(ctx context.Context) {
	if !d.running.TryLock() {
		d.log.Warn("sweep skipped: the previous one is still running")
		return
	}
	d.sweeps.Add(1)
	defer d.sweeps.Done()
	defer d.running.Unlock()
	if ctx.Err() != nil {
		return
	}
	sum, err := d.col.Sweep(ctx, collector.Window{})
	d.mu.Lock()
	d.last, d.lastErr = sum, err
	d.mu.Unlock()
	if err != nil {
		return
	}
	if dropped, err := d.dropExpired(ctx); err != nil {
		d.log.Error("retention failed", "err", err)
	} else if len(dropped) > 0 {
		d.log.Info("retention dropped partitions", "partitions", dropped)
	}
}

func (d *daemon) dropExpired(ctx context.Context) ([]string, error) {
	return schema.DropExpiredPartitions(ctx, d.conn, d.cfg.ClickHouseDB, d.cfg.RetentionMonths, time.Now())
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
