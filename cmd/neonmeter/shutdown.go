package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
)

// Exit codes of a second signal: the shell's 128 + signal number, so a supervisor can tell an
// abrupt exit from a failure.
const (
	exitSIGINT  = 130
	exitSIGTERM = 143
)

// valueBounds is NEONMETER_COLLECT_VALUE_BOUNDS: metric:max pairs overriding the collector's
// default ceilings of one project-hour.
type valueBounds map[string]uint64

// notifyShutdown returns a context cancelled by the first SIGINT or SIGTERM, whose cause names
// the signal. The second signal exits the process at once with 130 or 143: the operator has
// decided not to wait for the step in flight.
func notifyShutdown(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(fmt.Errorf("%v received", sig))
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "neonmeter: second signal (%v): exiting now, without waiting for the step in flight\n", sig)
			os.Exit(signalExitCode(sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

func signalExitCode(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return exitSIGTERM
	}
	return exitSIGINT
}

// graceful returns the context work runs in: it outlives stop by timeout, so the step in flight
// when a shutdown is asked for may finish; then it is cancelled with a cause naming the setting.
func graceful(stop context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancelCause(context.WithoutCancel(stop))
	go func() {
		select {
		case <-stop.Done():
		case <-work.Done():
			return
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(fmt.Errorf("shutdown (%v): the step in flight did not finish within NEONMETER_SHUTDOWN_TIMEOUT=%v", context.Cause(stop), timeout))
		case <-work.Done():
		}
	}()
	return work, func() { cancel(context.Canceled) }
}

// shortestInterval is the shortest time between two runs of sched in the year after from.
func shortestInterval(sched cron.Schedule, from time.Time) time.Duration {
	shortest := 366 * 24 * time.Hour
	prev := sched.Next(from)
	for range 2000 {
		next := sched.Next(prev)
		if next.IsZero() || next.Sub(from) > 366*24*time.Hour {
			break
		}
		shortest = min(shortest, next.Sub(prev))
		prev = next
	}
	return shortest
}

// String prints the overrides as they are written, sorted; "" when none.
func (b valueBounds) String() string {
	parts := make([]string, 0, len(b))
	for m, v := range b {
		parts = append(parts, fmt.Sprintf("%s:%d", m, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
