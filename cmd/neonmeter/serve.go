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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// ServeCommand runs the scheduled loops and serves /metrics, /healthz, /livez and /readyz.
type ServeCommand struct{ *Env }

func (c *ServeCommand) Synopsis() string {
	return "run the scheduled cycle (accounts sync, sweep, billing, enforcement, retention) and serve /metrics"
}

const serveUsage = `Usage: neonmeter serve [--initial-sweep=true] [--migrate=true]

Runs a cycle on NEONMETER_COLLECT_SCHEDULE (cron, UTC; default minute 20 of every hour), never
two at once: an accounts sync from Stripe (when NEONMETER_STRIPE_API_KEY is set), a budgeted
collection cycle per Neon account (as neonmeter collect without flags; see its help), then,
after it succeeded: a billing push to Stripe (with a Stripe key and a plan
catalog) and, when due, a reconciliation with Stripe (NEONMETER_BILLING_RECONCILE_SCHEDULE, and
before each period's invoice grace ends), enforcement of the plans in NEONMETER_PLANS_FILE (in
NEONMETER_ENFORCEMENT_MODE, dry-run by default; skipped without a catalog) and retention (partitions older than
NEONMETER_RETENTION_MONTHS are dropped). The sweep, accounts sync, billing, enforcement and
retention each run under their job's lease (NEONMETER_LEASE_TTL): a step whose lease another
neonmeter holds (another serve replica, an operator's command) is skipped that cycle, so several
replicas may share a database. Serves Prometheus metrics on http://NEONMETER_LISTEN_ADDR/metrics
and a health check on /healthz, which answers 503 when the last sweep failed, a sweep runs past
NEONMETER_COLLECT_DEADLINE or a cycle past the schedule's interval (stuck); /livez (liveness)
answers 503 only when stuck, which a restart fixes and a Neon outage does not. /readyz answers 200 once the database's migrations are applied and
ClickHouse answers (and ZooKeeper, with NEONMETER_LEASE_BACKEND=zookeeper), and 503 from the
first signal on.

On SIGINT or SIGTERM the step in flight (accounts sync, sweep, billing, enforcement or
retention) may finish within NEONMETER_SHUTDOWN_TIMEOUT (default 30s); past it, it is stopped,
and a stopped sweep is recorded as "stopped", not failed (what it wrote stays, the watermark does
not move). The cycle's remaining steps are skipped; serve then exits 0. A second signal exits at
once (130 for SIGINT, 143 for SIGTERM).

Flags:`

func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	initial := fs.Bool("initial-sweep", true, "run one sweep at start-up instead of waiting for the schedule")
	migrate := fs.Bool("migrate", true, "apply schema migrations at start-up (idempotent)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), serveUsage)
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

	reg := serveRegistry()
	deps := c.deps(cfg, reg)
	defer deps.close()
	if _, err := deps.NeonAccounts(); err != nil {
		return err
	}
	conn, err := deps.ClickHouse(ctx)
	if err != nil {
		return err
	}
	if *migrate {
		if _, err := schema.Migrate(ctx, conn, cfg.ClickHouseDB, log); err != nil {
			return err
		}
	}
	now, _ := cfg.clock()
	metrics, err := collector.NewMetrics(reg, now)
	if err != nil {
		return err
	}
	fleets, err := deps.Fleets(ctx, metrics, nil)
	if err != nil {
		return err
	}
	if err := loadWatermarks(ctx, collectorstore.New(conn, cfg.ClickHouseDB), cfg.orgs(), metrics); err != nil {
		return err
	}

	d := newDaemon(log, fleets, reg)
	d.deadline, d.interval = cfg.CollectDeadline, shortestInterval(schedule, time.Now())
	d.red = cfg.redactor()
	if d.leases, err = deps.Leases(ctx); err != nil {
		return err
	}
	if d.before, d.after, err = cycleSteps(ctx, deps); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", d.healthz)
	mux.HandleFunc("/livez", d.livez)
	mux.HandleFunc(readyzPath, (&readyCheck{conn: conn, db: cfg.ClickHouseDB, stop: ctx, coord: d.leases.ping}).readyz)
	srv := httpServer(mux, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "schedule", cfg.CollectSchedule, "orgs", cfg.orgNames())

	return d.loop(ctx, cfg.onClock(schedule), *initial, cfg.ShutdownTimeout, srv)
}

// serveRegistry is serve's Prometheus registry with the process's own series and the build.
func serveRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "neonmeter_build_info", Help: "Build version; always 1."}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	reg.MustRegister(buildInfo)
	return reg
}

// loadWatermarks tells the freshness gauge where each org's watermark stands at start-up.
func loadWatermarks(ctx context.Context, store *collectorstore.Store, orgs []neonOrg, m *collector.Metrics) error {
	for _, o := range orgs {
		feed := collector.Feed{OrgID: o.ID, Endpoint: o.Endpoint, Granularity: collector.GranularityHourly}
		wm, ok, err := store.Watermark(ctx, feed)
		if err != nil {
			return fmt.Errorf("read the watermark of org %s: %w", o.ID, err)
		}
		if ok {
			m.SetOrgWatermark(o.Endpoint, o.ID, wm)
		}
	}
	return nil
}

// cycleSteps builds the steps serve runs around each sweep, from what is configured: accounts
// sync and billing need a Stripe key, billing and enforcement a plan catalog. Each step doing a
// job runs under the job's lease, and its stage is fenced by the job's gate.
func cycleSteps(ctx context.Context, deps *deps) (before, after []step, err error) {
	cfg, log := deps.cfg, deps.log
	cat, err := servedCatalog(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	deps.cat = cat
	if cfg.StripeAPIKey != "" {
		if cat == nil {
			return nil, nil, usagef("%s_STRIPE_API_KEY is set: accounts sync and billing need a plan catalog (%s_PLANS_FILE)", envPrefix, envPrefix)
		}
		// One Stripe client (deps builds it once): sync and billing share its connections.
		sync, err := deps.Syncer(ctx, true)
		if err != nil {
			return nil, nil, err
		}
		before = append(before, step{name: "accounts_sync", lease: jobAccounts, run: func(ctx context.Context) error {
			_, err := sync.Sync(ctx, false)
			return err
		}})
		bm, err := billing.NewMetrics(deps.reg)
		if err != nil {
			return nil, nil, err
		}
		pusher, err := deps.Pusher(ctx, bm, 0)
		if err != nil {
			return nil, nil, err
		}
		after = append(after, step{name: "billing_push", lease: jobBilling, run: func(ctx context.Context) error {
			_, err := pusher.Push(ctx, false)
			return err
		}})
		reconcile, err := reconcileStep(cfg, pusher)
		if err != nil {
			return nil, nil, err
		}
		after = append(after, step{name: "billing_reconcile", lease: jobBilling, run: reconcile})
	}
	if cat != nil {
		em, err := enforcement.NewMetrics(deps.reg)
		if err != nil {
			return nil, nil, err
		}
		rec, err := deps.Enforcer(ctx, policyFromConfig(cfg), em, true)
		if err != nil {
			return nil, nil, err
		}
		after = append(after, step{name: "enforce", lease: jobEnforcement, run: func(ctx context.Context) error {
			_, err := rec.Cycle(ctx, enforcement.CycleOptions{})
			return err
		}})
	}
	if cat != nil && cfg.CostsFile != "" {
		// Load the cost table once at start: the dashboards' margin panels read it in ClickHouse.
		if _, _, err := deps.Finance(ctx); err != nil {
			return nil, nil, err
		}
	}
	return before, append(after, retentionStep(deps)), nil
}

// retentionStep drops the partitions older than NEONMETER_RETENTION_MONTHS.
func retentionStep(deps *deps) step {
	gate := deps.leases.gate(jobRetention)
	return step{name: "retention", lease: jobRetention, run: func(ctx context.Context) error {
		if err := gate.Check(ctx); err != nil {
			return err
		}
		dropped, err := schema.DropExpiredPartitions(ctx, deps.conn, deps.cfg.ClickHouseDB, deps.cfg.RetentionMonths, time.Now())
		if len(dropped) > 0 {
			deps.log.Info("retention dropped partitions", "partitions", dropped)
		}
		return err
	}}
}

// servedCatalog loads the plan catalog that billing and enforcement need. Without
// NEONMETER_PLANS_FILE set and the default file absent, serve only collects (nil catalog); a
// catalog named but unreadable or invalid is a configuration error.
func servedCatalog(cfg Config, log *slog.Logger) (*plans.Catalog, error) {
	if _, set := os.LookupEnv(envPrefix + "_PLANS_FILE"); !set {
		if _, err := os.Stat(cfg.PlansFile); errors.Is(err, os.ErrNotExist) {
			log.Warn("no plan catalog: "+cfg.PlansFile+" does not exist and NEONMETER_PLANS_FILE is not set; serve only collects usage, billing and enforcement are off until NEONMETER_PLANS_FILE names a catalog", "plans_file", cfg.PlansFile)
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
	fleets []*collector.Fleet // one budgeted collector per Neon account
	before []step
	after  []step
	steps  *prometheus.CounterVec
	leases *jobLeases // the steps' leases; nil runs them without
	// red removes the configured secrets from what /healthz shows of the last sweep's error.
	red *redact.Redactor

	// deadline (NEONMETER_COLLECT_DEADLINE) and interval (the schedule's shortest) tell /healthz
	// when a sweep or a cycle is stuck.
	deadline, interval time.Duration

	running sync.Mutex // held by the cycle in progress: one at a time
	mu      sync.Mutex
	last    collector.Summary
	lastErr error
	now     cycleState // the cycle in flight
}

// step is one stage of a serve cycle besides the sweep.
type step struct {
	name string
	// lease names the job whose lease the step runs under (jobBilling, …); empty: none.
	lease string
	run   func(ctx context.Context) error
}

func newDaemon(log *slog.Logger, fleets []*collector.Fleet, reg prometheus.Registerer) *daemon {
	d := &daemon{log: log, fleets: fleets, steps: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "neonmeter_serve_steps_total",
		Help: "Steps of serve's cycles besides the sweep (accounts sync, retention, …) by result.",
	}, []string{"step", "result"})}
	reg.MustRegister(d.steps)
	return d
}

// wait waits at most limit for the cycle in flight to end, and reports whether it did. No cycle
// starts after it: it keeps the cycle lock.
func (d *daemon) wait(limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		d.running.Lock()
		close(done)
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// cycle runs one cycle unless one is already running (the initial cycle and a scheduled one may
// meet) or a shutdown was asked for (stop done). Steps run in work; once stop is done, the step
// in flight goes on and the rest are skipped.
func (d *daemon) cycle(stop, work context.Context) {
	if stop.Err() != nil {
		return
	}
	if !d.running.TryLock() {
		d.log.Warn("cycle skipped: the previous one is still running")
		return
	}
	defer d.running.Unlock()
	d.track(func(s *cycleState) { *s = cycleState{started: time.Now()} })
	defer d.track(func(s *cycleState) { *s = cycleState{} })
	if !d.runSteps(stop, work, d.before) {
		return
	}
	if stop.Err() != nil {
		d.log.Info("shutdown: the sweep and the cycle's remaining steps are skipped")
		return
	}
	d.track(func(s *cycleState) { s.step, s.sweepStarted = "sweep", time.Now() })
	sum, err := d.sweep(work)
	if refused(err) {
		// Another replica sweeps this hour and runs the steps after it; collection is
		// idempotent, but two sweeps would spend the consumption budget twice.
		d.track(func(s *cycleState) { s.sweepStarted = time.Time{} })
		d.log.Info("sweep skipped: another neonmeter holds the collect lease", logkey.Err, err)
		return
	}
	d.mu.Lock()
	d.last, d.lastErr, d.now.sweepStarted = sum, err, time.Time{}
	d.mu.Unlock()
	switch {
	case errors.Is(err, collector.ErrStopped):
		d.log.Info("sweep stopped by the shutdown; recorded as stopped", logkey.RunID, sum.RunID, logkey.OrgID, sum.OrgID)
		return
	case err != nil:
		d.log.Error("sweep failed", logkey.RunID, sum.RunID, logkey.OrgID, sum.OrgID, logkey.Err, err)
		return
	}
	d.runSteps(stop, work, d.after)
}

// sweep runs the scheduled budgeted cycles (one per Neon account) under the collect lease
// (without one in tests), and sums their runs up for /healthz.
func (d *daemon) sweep(ctx context.Context) (sum collector.Summary, err error) {
	collect := func(ctx context.Context) error {
		return guarded(func() error {
			var sums []collector.CycleSummary
			sums, err = runFleets(ctx, d.fleets)
			sum = lastRuns(sums)
			return err
		})
	}
	if d.leases == nil {
		err = collect(ctx)
		return sum, err
	}
	err = d.leases.run(ctx, jobCollect, false, collect)
	return sum, err
}

// runSteps runs steps in work until stop is done, and reports whether all ran. A step ended by
// the shutdown counts as stopped, not failed.
func (d *daemon) runSteps(stop, work context.Context, steps []step) bool {
	for i, s := range steps {
		if stop.Err() != nil {
			d.log.Info("shutdown: the cycle's remaining steps are skipped", "skipped", stepNames(steps[i:]))
			return false
		}
		d.track(func(st *cycleState) { st.step = s.name })
		err := d.runStep(work, s)
		switch {
		case refused(err):
			d.steps.WithLabelValues(s.name, "skipped").Inc()
			d.log.Warn("step skipped: another neonmeter holds its lease", logkey.Step, s.name, logkey.Err, err)
		case err != nil && stop.Err() != nil && work.Err() != nil:
			d.steps.WithLabelValues(s.name, "stopped").Inc()
			d.log.Info("step stopped by the shutdown", logkey.Step, s.name, logkey.Err, err)
		case err != nil:
			d.steps.WithLabelValues(s.name, "failure").Inc()
			d.log.Error("step failed", logkey.Step, s.name, logkey.Err, err)
		default:
			d.steps.WithLabelValues(s.name, "success").Inc()
		}
	}
	return true
}

// runStep runs s, under its job's lease when it names one; a panic in it fails the step.
func (d *daemon) runStep(ctx context.Context, s step) error {
	run := func(ctx context.Context) error { return guarded(func() error { return s.run(ctx) }) }
	if s.lease == "" || d.leases == nil {
		return run(ctx)
	}
	return d.leases.run(ctx, s.lease, false, run)
}

// track changes the state of the cycle in flight under the lock /healthz reads it with.
func (d *daemon) track(f func(*cycleState)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.now)
}

func (d *daemon) healthz(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	code, msg := health(d.last, d.lastErr, d.now, d.deadline, d.interval, time.Now())
	d.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, d.red.String(msg))
}

func (d *daemon) livez(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	s, msg := stuck(d.now, d.deadline, d.interval, time.Now())
	d.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, msg)
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
