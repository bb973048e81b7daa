package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// binary builds the neonmeter binary for the test (the build cache makes repeats cheap).
func binary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "neonmeter")
	if out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput(); err != nil {
		t.Fatalf("build neonmeter: %v\n%s", err, out)
	}
	return path
}

// served is a neonmeter serve process on a slowed simulator.
type served struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
	db     string
}

// startServe starts the real binary's serve with each simulator answer delayed by slow, and
// waits until its first sweep recorded its start.
func startServe(t *testing.T, slow, shutdownTimeout time.Duration) *served {
	t.Helper()
	bin := binary(t)
	s, db := simEnv(t, 400)
	s.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: slow, Seed: 1})
	t.Setenv("NEONMETER_LISTEN_ADDR", freeAddr(t))
	t.Setenv("NEONMETER_LOG_LEVEL", "info")
	t.Setenv("NEONMETER_SHUTDOWN_TIMEOUT", shutdownTimeout.String())
	// No plan catalog: the cycle is the sweep and retention.
	p := &served{cmd: exec.Command(bin, "serve"), stderr: &bytes.Buffer{}, done: make(chan error, 1), db: db}
	p.cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	conn := chtest.Connect(t)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".collection_runs FINAL WHERE outcome = 'running'").Scan(&n)
		if err == nil && n == 1 {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never started a sweep\n%s", p.stderr)
		}
	}
}

// exit waits for the process and returns its exit code and how long it took.
func (p *served) exit(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("serve still runs %v after the signal\n%s", within, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// run reads the one collection run's outcome and error.
func (p *served) run(t *testing.T) (collector.Outcome, string) {
	t.Helper()
	var outcome, msg string
	if err := chtest.Connect(t).QueryRow(context.Background(), "SELECT toString(outcome), error FROM "+p.db+".collection_runs FINAL").Scan(&outcome, &msg); err != nil {
		t.Fatal(err)
	}
	return collector.Outcome(outcome), msg
}

// lockedWriter serialises the child's writes with the test's reads.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestServe_SIGTERMStopsTheSweepCleanly: SIGTERM mid-sweep used to record the sweep as failed
// (and skip the rest of the cycle although serve -h said it let the cycle end). Now the sweep in
// flight gets NEONMETER_SHUTDOWN_TIMEOUT to finish; past it, it is stopped and recorded as
// "stopped", and serve exits 0.
func TestServe_SIGTERMStopsTheSweepCleanly(t *testing.T) {
	p := startServe(t, 4*time.Second, time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := p.exit(t, 20*time.Second)
	if code != exitOK {
		t.Fatalf("serve exited %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	if took < 900*time.Millisecond {
		t.Errorf("serve exited %v after SIGTERM: the sweep in flight was not given its second", took)
	}
	outcome, msg := p.run(t)
	if outcome != collector.OutcomeStopped || !strings.Contains(msg, "NEONMETER_SHUTDOWN_TIMEOUT=1s") {
		t.Fatalf("the run is %s %q; want stopped naming the shutdown timeout\n%s", outcome, msg, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Errorf("a clean stop logged an error:\n%s", p.stderr)
	}
}

// TestServe_SIGTERMLetsTheSweepFinish: with time enough, the sweep in flight at SIGTERM
// completes (success, watermark advanced) and only the cycle's remaining steps are skipped.
func TestServe_SIGTERMLetsTheSweepFinish(t *testing.T) {
	p := startServe(t, 500*time.Millisecond, 60*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.exit(t, 60*time.Second); code != exitOK {
		t.Fatalf("serve exited %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	if outcome, msg := p.run(t); outcome != collector.OutcomeSuccess {
		t.Fatalf("the run is %s %q; the sweep in flight must finish\n%s", outcome, msg, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "the cycle's remaining steps are skipped") || !strings.Contains(p.stderr.String(), "retention") {
		t.Errorf("serve did not say it skipped the remaining steps (retention):\n%s", p.stderr)
	}
}

// TestServe_SecondSignalExitsAtOnce: the first SIGTERM waits for the step in flight; a second
// exits at once with 143 (it used to be ignored).
func TestServe_SecondSignalExitsAtOnce(t *testing.T) {
	p := startServe(t, 10*time.Second, 60*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("serve exited on the first SIGTERM while its sweep had a minute to finish\n%s", p.stderr)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := p.exit(t, 5*time.Second)
	if code != exitSIGTERM || took > 2*time.Second {
		t.Fatalf("after a second SIGTERM serve exited %d in %v; want 143 at once\n%s", code, took, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "second signal") {
		t.Errorf("stderr does not say why it exited:\n%s", p.stderr)
	}
	// Nothing recorded its end: the run stays running until a later sweep finds it abandoned.
	if outcome, _ := p.run(t); outcome != collector.OutcomeRunning {
		t.Errorf("the run is %s", outcome)
	}
}

// TestHealthz_ReportsAStuckCycle: /healthz answered ok while a cycle hung; now a cycle running
// longer than the schedule's interval, or a sweep past its deadline, answers 503 naming it.
func TestHealthz_ReportsAStuckCycle(t *testing.T) {
	d := newDaemon(slog.New(slog.DiscardHandler), nil, prometheus.NewRegistry())
	d.deadline, d.interval = time.Hour, 200*time.Millisecond
	release := make(chan struct{})
	d.before = []step{{name: "accounts_sync", run: func(context.Context) error { <-release; return nil }}}
	stop, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { d.cycle(stop, context.Background()); close(ended) }()
	srv := httptest.NewServer(http.HandlerFunc(d.healthz))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("a fresh cycle: %d %q", code, body)
	}
	time.Sleep(300 * time.Millisecond)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "step accounts_sync") || !strings.Contains(body, "NEONMETER_COLLECT_SCHEDULE") {
		t.Fatalf("a cycle past the interval: %d %q; want 503 naming the step", code, body)
	}
	cancel() // the sweep after the step is skipped: a shutdown is under way
	close(release)
	<-ended
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("after the cycle: %d %q", code, body)
	}

	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	sweeping := cycleState{started: at.Add(-50 * time.Minute), step: "sweep", sweepStarted: at.Add(-47 * time.Minute)}
	code, msg := health(collector.Summary{}, nil, sweeping, 45*time.Minute, time.Hour, at)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "NEONMETER_COLLECT_DEADLINE=45m0s") {
		t.Errorf("a sweep 2 min past its deadline: %d %q", code, msg)
	}
	if code, _ := health(collector.Summary{}, nil, sweeping, 45*time.Minute, time.Hour, at.Add(-2*time.Minute)); code != http.StatusOK {
		t.Errorf("a sweep within its deadline: %d", code)
	}
	stopped := collector.Summary{RunID: "collect-x", Outcome: collector.OutcomeStopped}
	if code, _ := health(stopped, collector.ErrStopped, cycleState{}, time.Hour, time.Hour, at); code != http.StatusOK {
		t.Errorf("a sweep stopped by a shutdown reads as a failure: %d", code)
	}
}

// TestConfig_DeadlineBelowSchedule: a deadline as long as the schedule's interval would let a
// stuck sweep hold the next one back; the settings are refused together.
func TestConfig_DeadlineBelowSchedule(t *testing.T) {
	clearEnv(t)
	t.Setenv("NEONMETER_COLLECT_SCHEDULE", "*/15 * * * *")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "NEONMETER_COLLECT_DEADLINE") || !strings.Contains(err.Error(), "15m0s") {
		t.Fatalf("45m deadline with a 15-minute schedule: %v", err)
	}
	t.Setenv("NEONMETER_COLLECT_DEADLINE", "10m")
	if _, err := LoadConfig(); err != nil {
		t.Fatalf("10m deadline with a 15-minute schedule: %v", err)
	}
	for env, v := range map[string]string{
		"NEONMETER_COLLECT_MIN_PROJECTS_RATIO": "NaN",
		"NEONMETER_COLLECT_VALUE_BOUNDS":       "cpu_seconds:5",
		"NEONMETER_NEON_MAX_RESPONSE_MB":       "0",
		"NEONMETER_SHUTDOWN_TIMEOUT":           "0s",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, v)
			if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), env) {
				t.Errorf("%s=%s: %v", env, v, err)
			}
		})
	}
	t.Setenv("NEONMETER_COLLECT_VALUE_BOUNDS", "compute_unit_seconds:7200,public_network_transfer_bytes:1000000")
	c, err := LoadConfig()
	if err != nil || c.CollectBounds["compute_unit_seconds"] != 7200 {
		t.Fatalf("bounds override: %v %v", c.CollectBounds, err)
	}
	if d := shortestInterval(mustSchedule(t, "0 9,17 * * 1-5"), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)); d != 8*time.Hour {
		t.Errorf("shortest interval of 9:00 and 17:00 on weekdays: %v", d)
	}
}

func mustSchedule(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Liveness fails only on what a restart fixes: a stuck cycle, never a failed sweep (a Neon
// outage would otherwise restart every replica and spend the rate budget again).
func TestLivez_StuckOnlyNotAFailedSweep(t *testing.T) {
	d := newDaemon(slog.New(slog.DiscardHandler), nil, prometheus.NewRegistry())
	d.deadline, d.interval = time.Minute, time.Hour
	d.last, d.lastErr = collector.Summary{RunID: "sweep-1"}, errors.New("neon: 503 Service Unavailable")
	get := func(h http.HandlerFunc) int {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code
	}
	if code := get(d.healthz); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after a failed sweep: %d; want 503", code)
	}
	if code := get(d.livez); code != http.StatusOK {
		t.Fatalf("/livez after a failed sweep: %d; want 200 (a restart does not fix an outage)", code)
	}
	d.now = cycleState{started: time.Now().Add(-2 * time.Hour), step: "sweep", sweepStarted: time.Now().Add(-2 * time.Hour)}
	if code := get(d.livez); code != http.StatusServiceUnavailable {
		t.Fatalf("/livez with a sweep two hours past its deadline: %d; want 503", code)
	}
}
