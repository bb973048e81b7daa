package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// stepStopGrace is how long after NEONMETER_SHUTDOWN_TIMEOUT serve waits for the stopped step
// to return (a sweep records its outcome within 10 s) before it exits without it.
const stepStopGrace = 15 * time.Second

// stuckGrace is how long past NEONMETER_COLLECT_DEADLINE a sweep may take to record its outcome
// before /healthz calls it stuck.
const stuckGrace = time.Minute

// cycleState is what serve's cycle in flight is doing; zero between cycles.
type cycleState struct {
	started      time.Time // the cycle's start
	step         string    // the step in flight
	sweepStarted time.Time // the sweep's start, zero outside the sweep
}

// stuck reports a sweep running past its deadline (it should have stopped itself: something
// ignores cancellation) or a cycle running longer than the schedule's interval (the next cycles
// are being skipped): what a restart fixes, so /livez, Kubernetes' liveness probe, answers it.
func stuck(now cycleState, deadline, interval time.Duration, at time.Time) (bool, string) {
	if !now.sweepStarted.IsZero() && at.Sub(now.sweepStarted) > deadline+stuckGrace {
		return true, fmt.Sprintf("stuck: the sweep has run for %v, past NEONMETER_COLLECT_DEADLINE=%v",
			at.Sub(now.sweepStarted).Round(time.Second), deadline)
	}
	if !now.started.IsZero() && at.Sub(now.started) > interval {
		return true, fmt.Sprintf("stuck: the cycle has run for %v (now in step %s), longer than NEONMETER_COLLECT_SCHEDULE's interval %v; later cycles are skipped",
			at.Sub(now.started).Round(time.Second), now.step, interval)
	}
	return false, "alive: no cycle is stuck"
}

// health decides /healthz's answer: 503 when a cycle is stuck or when the last sweep failed. A
// failed sweep (Neon or ClickHouse down) is for alerts and dashboards, not for restarts: a
// restart would only spend Neon's rate budget again, so liveness asks /livez instead.
func health(last collector.Summary, lastErr error, now cycleState, deadline, interval time.Duration, at time.Time) (int, string) {
	if s, msg := stuck(now, deadline, interval, at); s {
		return http.StatusServiceUnavailable, msg
	}
	switch {
	case last.RunID == "":
		return http.StatusOK, "ok: no sweep finished yet"
	case lastErr != nil && !errors.Is(lastErr, collector.ErrStopped):
		return http.StatusServiceUnavailable, fmt.Sprintf("last sweep %s failed: %v", last.RunID, lastErr)
	}
	return http.StatusOK, fmt.Sprintf("ok: last sweep %s %s, watermark %s", last.RunID, verb(last.Outcome), last.Watermark.Format(time.RFC3339))
}

func verb(o collector.Outcome) string {
	if o == collector.OutcomeSuccess {
		return "succeeded"
	}
	return string(o)
}

func stepNames(steps []step) string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

// loop runs cycles on sched (and one at once if initial) until ctx is done, then shuts down:
// steps run in work, which outlives ctx by shutdown, so the step in flight at a signal may
// finish while ctx tells the cycle to start nothing more; then the HTTP server stops.
func (d *daemon) loop(ctx context.Context, sched cron.Schedule, initial bool, shutdown time.Duration, srv *http.Server) error {
	work, stopWork := graceful(ctx, shutdown)
	defer stopWork()
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{d.log}))
	c.Schedule(sched, cron.FuncJob(func() { d.cycle(ctx, work) }))
	c.Start()
	if initial {
		go d.cycle(ctx, work)
	}
	<-ctx.Done()
	d.log.Info("shutting down: the step in flight may finish, the cycle's remaining steps are skipped",
		"cause", context.Cause(ctx), "timeout", shutdown)
	c.Stop()
	ended := d.wait(shutdown + stepStopGrace)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serr := srv.Shutdown(shutCtx)
	if !ended {
		return fmt.Errorf("shutdown: the step in flight ignored its cancellation for %v past NEONMETER_SHUTDOWN_TIMEOUT=%v; exiting without it", stepStopGrace, shutdown)
	}
	d.log.Info("stopped")
	return serr
}

// readyzPath is the route serve answers readiness on (Kubernetes' readinessProbe).
const readyzPath = "/readyz"

// readyTimeout bounds the ClickHouse round trip one /readyz answer makes; below the probe's.
const readyTimeout = 3 * time.Second

// readiness decides /readyz's answer: 503 while serve shuts down, when ClickHouse does not
// answer, when the database lacks migrations this binary needs, or when the coordination service
// keeping the leases (ZooKeeper) does not answer; 200 otherwise. serve runs only with a valid
// configuration. Unlike /healthz (liveness: restarting helps), nothing here is fixed by a restart.
func readiness(stopping bool, pending []string, chErr, coordErr error, db string) (int, string) {
	switch {
	case stopping:
		return http.StatusServiceUnavailable, "not ready: shutting down"
	case chErr != nil:
		return http.StatusServiceUnavailable, fmt.Sprintf("not ready: ClickHouse (NEONMETER_CLICKHOUSE_ADDR) does not answer: %v", chErr)
	case len(pending) > 0:
		return http.StatusServiceUnavailable, fmt.Sprintf("not ready: database %s (NEONMETER_CLICKHOUSE_DATABASE) lacks migration(s) %s: run `neonmeter migrate` or serve --migrate",
			db, strings.Join(pending, ", "))
	case coordErr != nil:
		return http.StatusServiceUnavailable, fmt.Sprintf("not ready: the lease service (NEONMETER_ZOOKEEPER_ADDRS) does not answer, so no job can run: %v", coordErr)
	}
	return http.StatusOK, "ready: configuration valid, migrations applied, ClickHouse and the lease backend answer"
}

// readyCheck gathers what readiness judges. Once every migration is seen applied it only pings
// (migrations are never undone), keeping the probe to one round trip per service.
type readyCheck struct {
	conn driver.Conn
	db   string
	stop context.Context // serve's signal context: done once shutdown starts
	// coord pings the coordination service keeping the leases; nil when they live in ClickHouse.
	coord    func(context.Context) error
	migrated atomic.Bool
}

func (rc *readyCheck) readyz(w http.ResponseWriter, r *http.Request) {
	code, msg := rc.check(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func (rc *readyCheck) check(ctx context.Context) (int, string) {
	if rc.stop.Err() != nil {
		return readiness(true, nil, nil, nil, rc.db)
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var coordErr error
	if rc.coord != nil {
		coordErr = rc.coord(ctx)
	}
	if rc.migrated.Load() {
		return readiness(false, nil, rc.conn.Ping(ctx), coordErr, rc.db)
	}
	migs, err := schema.Pending(ctx, rc.conn, rc.db)
	var names []string
	for _, m := range migs {
		names = append(names, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	if err == nil && len(names) == 0 {
		rc.migrated.Store(true)
	}
	return readiness(false, names, err, coordErr, rc.db)
}
