package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/collector"
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

// health decides /healthz's answer: 503 when a sweep runs past its deadline (it should have
// stopped itself: something ignores cancellation), when a cycle runs longer than the schedule's
// interval (the next cycles are being skipped), or when the last sweep failed.
func health(last collector.Summary, lastErr error, now cycleState, deadline, interval time.Duration, at time.Time) (int, string) {
	if !now.sweepStarted.IsZero() && at.Sub(now.sweepStarted) > deadline+stuckGrace {
		return http.StatusServiceUnavailable, fmt.Sprintf("stuck: the sweep has run for %v, past NEONMETER_COLLECT_DEADLINE=%v",
			at.Sub(now.sweepStarted).Round(time.Second), deadline)
	}
	if !now.started.IsZero() && at.Sub(now.started) > interval {
		return http.StatusServiceUnavailable, fmt.Sprintf("stuck: the cycle has run for %v (now in step %s), longer than NEONMETER_COLLECT_SCHEDULE's interval %v; later cycles are skipped",
			at.Sub(now.started).Round(time.Second), now.step, interval)
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
