package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// binary builds the neonmeter binary for the test.
func binary(t *testing.T) string {
	t.Helper()
	return filepath.Join(crashtest.Build(t, "."), "neonmeter")
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
	t.Setenv("NEONMETER_LISTEN_ADDR", crashtest.FreeAddr(t))
	t.Setenv("NEONMETER_LOG_LEVEL", "info")
	t.Setenv("NEONMETER_SHUTDOWN_TIMEOUT", shutdownTimeout.String())
	// No plan catalog: the cycle is the sweep and retention.
	p := launch(t, bin, db)
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

// launch starts bin's serve with the test's environment; the process is killed at cleanup if
// the test left it running.
func launch(t *testing.T, bin, db string) *served {
	t.Helper()
	return launchCmd(t, exec.Command(bin, "serve"), db)
}

// launchCmd starts cmd, a serve on database db; the process is killed at cleanup if the test
// left it running.
func launchCmd(t *testing.T, cmd *exec.Cmd, db string) *served {
	t.Helper()
	p := &served{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1), db: db}
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
	return p
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

// slowStripe delays the answers to meter events: the fake applies each event at once and the
// answer waits, so a push cut short leaves values Stripe holds that the ledger has as intents.
type slowStripe struct {
	fake  *stripefake.Server
	delay atomic.Int64 // nanoseconds; 0 answers at once
}

func (s *slowStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := time.Duration(s.delay.Load())
	if d == 0 || r.Method != http.MethodPost || r.URL.Path != "/v1/billing/meter_events" {
		s.fake.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.fake.ServeHTTP(rec, r)
	select {
	case <-time.After(d):
	case <-r.Context().Done(): // the client gave up: Stripe has the event, the client never knows
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// billingServe is serve with billing on: the simulator, a database, the recording fake Stripe
// behind slowStripe with one customer per 20 of the launch org's projects on a plan billing
// compute through a Billing Meter (created and mapped with the binary's own commands).
type billingServe struct {
	bin, db string
	conn    driver.Conn
	stripe  *slowStripe
	ttl     time.Duration // NEONMETER_LEASE_TTL
}

func newBillingServe(t *testing.T) *billingServe {
	t.Helper()
	s, db := simEnv(t, 200)
	const key = "sk_test_shutdown_0123456789"
	b := &billingServe{bin: binary(t), db: db, conn: chtest.Connect(t), ttl: 5 * time.Second,
		stripe: &slowStripe{fake: stripefake.New(stripefake.Options{APIKey: key, Now: time.Now})}}
	srv := httptest.NewServer(b.stripe)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	catalog := filepath.Join(dir, "plans.yaml")
	if err := os.WriteFile(catalog, []byte("version: 1\nplans:\n  - name: free\n  - name: pro\n    billing:\n"+
		"      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"NEONMETER_STRIPE_API_URL": srv.URL, "NEONMETER_STRIPE_API_KEY": key, "NEONMETER_PLANS_FILE": catalog,
		"NEONMETER_LOG_LEVEL": "info", "NEONMETER_LEASE_TTL": b.ttl.String(), "NEONMETER_BILLING_CONCURRENCY": "4"} {
		t.Setenv(k, v)
	}
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: srv.URL})
	csv := "project_id,customer_id,plan,valid_from\n"
	ids := s.Orgs()[1].ProjectIDs // the org NEONMETER_NEON_ORG_ID names
	for i := 0; i < len(ids); i += 20 {
		cu, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("shutdown-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ids[i:min(i+20, len(ids))] {
			csv += fmt.Sprintf("%s,%s,pro,2020-01-01T00:00:00Z\n", p, cu.ID)
		}
	}
	mapping := filepath.Join(dir, "accounts.csv")
	if err := os.WriteFile(mapping, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	b.command(t, "migrate")
	b.command(t, "billing", "setup", "--apply")
	b.command(t, "accounts", "import", mapping)
	return b
}

// command runs a one-shot command of the binary, which must succeed; it returns its stdout.
func (b *billingServe) command(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("neonmeter %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// start runs serve with the given shutdown timeout and Stripe latency; it returns the process
// and its listen address.
func (b *billingServe) start(t *testing.T, shutdown, latency time.Duration) (*served, string) {
	t.Helper()
	addr := crashtest.FreeAddr(t)
	t.Setenv("NEONMETER_LISTEN_ADDR", addr)
	t.Setenv("NEONMETER_SHUTDOWN_TIMEOUT", shutdown.String())
	b.stripe.delay.Store(int64(latency))
	return launch(t, b.bin, b.db), addr
}

// pushing waits until the push of p has had n more meter events accepted than before.
func (b *billingServe) pushing(t *testing.T, p *served, before, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); b.stripe.fake.AcceptedMeterEvents() < before+n; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("serve exited before its billing push got going\n%s", p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no billing push in flight after 60 s (%d events accepted)\n%s", b.stripe.fake.AcceptedMeterEvents(), p.stderr)
		}
	}
}

// noneFailed fails the test when any ledger row, of any step, records a failure.
func (b *billingServe) noneFailed(t *testing.T, when string) {
	t.Helper()
	if n := chtest.Count(t, b.conn, "SELECT count() FROM "+b.db+".billing_ledger WHERE status = 'failed'"); n != 0 {
		t.Errorf("%s: %d billing_ledger rows record a failure", when, n)
	}
}

// ledger returns the latest ledger row of every cell.
func (b *billingServe) ledger(t *testing.T) []billing.LedgerRow {
	t.Helper()
	rows, err := billingstore.New(b.conn, b.db).Ledger(t.Context(), time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// heldByStripe checks that every value the ledger records as pushed is what the fake holds
// under the same identifier, and returns how many there are.
func (b *billingServe) heldByStripe(t *testing.T, rows []billing.LedgerRow) int {
	t.Helper()
	windows := b.stripe.fake.MeterWindows("neon_compute")
	pushed := 0
	for _, r := range rows {
		if r.Status != billing.LedgerPushed {
			continue
		}
		pushed++
		if w := windows[r.CustomerID][r.Hour.UTC()]; w.Value != r.Value || w.Identifier != r.Identifier {
			t.Errorf("the ledger records %s %s as pushed %d (%s); Stripe holds %d (%s)", r.CustomerID, r.Hour.Format(time.RFC3339), r.Value, r.Identifier, w.Value, w.Identifier)
		}
	}
	return pushed
}

// TestServe_SIGTERMDuringBillingPush: SIGTERM while billing_push sends to a slow Stripe lets the
// push go on for NEONMETER_SHUTDOWN_TIMEOUT, then stops it: exit 0, the step counted stopped
// (not failed), no ledger row failed, and everything the ledger calls pushed is what Stripe
// holds. A second start after a second signal (exit 143 at once, intents left mid-request)
// and a third without latency resume the same identifiers: Stripe then holds exactly the
// ledger's values, every event accepted once (no value counted twice), and a dry run finds
// nothing left to send.
func TestServe_SIGTERMDuringBillingPush(t *testing.T) {
	b := newBillingServe(t)
	const timeout = 2 * time.Second

	// 1. SIGTERM mid-push: the push has its timeout, then is stopped.
	p, _ := b.start(t, timeout, 150*time.Millisecond)
	b.pushing(t, p, 0, 10)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := p.exit(t, timeout+stepStopGrace+5*time.Second)
	if code != exitOK || took < timeout-200*time.Millisecond {
		t.Fatalf("serve exited %d %v after SIGTERM; want 0 once the push had its %v\n%s", code, took, timeout, p.stderr)
	}
	log := p.stderr.String()
	if !logged(log, "step stopped by the shutdown", "step=billing_push") || strings.Contains(log, "level=ERROR") {
		t.Fatalf("the cut push is not logged as stopped, or an error was logged:\n%s", log)
	}
	b.noneFailed(t, "after the push was stopped")
	// The outcomes were written on the way out: only the requests in flight at the cut, one per
	// worker (NEONMETER_BILLING_CONCURRENCY), are left as intents Stripe already holds.
	first := b.heldByStripe(t, b.ledger(t))
	if accepted := b.stripe.fake.AcceptedMeterEvents(); first == 0 || accepted < first || accepted-first > 4 {
		t.Fatalf("after the stop: %d values recorded pushed, %d accepted by Stripe", first, accepted)
	}
	t.Logf("stopped after %v: %d values recorded pushed, %d accepted by Stripe", took, first, b.stripe.fake.AcceptedMeterEvents())

	// 2. A second signal exits at once, mid-request.
	p, _ = b.start(t, time.Minute, 150*time.Millisecond)
	b.pushing(t, p, b.stripe.fake.AcceptedMeterEvents(), 10)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, took := p.exit(t, 5*time.Second); code != exitSIGTERM || took > 2*time.Second {
		t.Fatalf("after a second SIGTERM serve exited %d in %v; want 143 at once\n%s", code, took, p.stderr)
	}
	if !logged(p.stderr.String(), "second signal") {
		t.Errorf("stderr does not say why it exited:\n%s", p.stderr)
	}
	killed := time.Now()
	b.noneFailed(t, "after the second signal")
	t.Logf("second signal: %d values recorded pushed, %d accepted by Stripe", b.heldByStripe(t, b.ledger(t)), b.stripe.fake.AcceptedMeterEvents())

	// 3. The next start, once the killed holder's billing lease expired, completes the push.
	time.Sleep(time.Until(killed.Add(b.ttl + 500*time.Millisecond)))
	// The push window ends where NEONMETER_COLLECT_PROVISIONAL (2 h) starts.
	windowTo := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	p, addr := b.start(t, time.Minute, 0)
	steps := b.cycleDone(t, p, addr)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.exit(t, 30*time.Second); code != exitOK {
		t.Fatalf("the third serve exited %d\n%s", code, p.stderr)
	}
	if !strings.Contains(steps, `result="success",step="billing_push"} 1`) || strings.Contains(steps, `result="failure"`) || strings.Contains(steps, `result="skipped"`) {
		t.Fatalf("the third serve's steps:\n%s\n%s", steps, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Errorf("the third serve logged an error:\n%s", p.stderr)
	}
	b.noneFailed(t, "after the next start")
	b.complete(t, windowTo)
}

// cycleDone waits until serve's first cycle ran retention, its last step, and returns the
// step counters it exported.
func (b *billingServe) cycleDone(t *testing.T, p *served, addr string) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("serve exited during its first cycle\n%s", p.stderr)
		default:
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var steps []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "neonmeter_serve_steps_total{") {
				steps = append(steps, l)
			}
		}
		if s := strings.Join(steps, "\n"); strings.Contains(s, `step="retention"}`) {
			return s
		}
	}
	t.Fatalf("serve's cycle did not reach retention within 60 s\n%s", p.stderr)
	return ""
}

// complete checks the end state: no intent left, Stripe holds exactly the ledger's pushed
// values under their identifiers, each accepted once, an identifier never carried two values,
// and a dry run has nothing to send for the hours the last push covered (before windowTo).
func (b *billingServe) complete(t *testing.T, windowTo time.Time) {
	t.Helper()
	rows := b.ledger(t)
	for _, r := range rows {
		if r.Status == billing.LedgerIntent {
			t.Errorf("%s %s is left as an intent (%s)", r.CustomerID, r.Hour.Format(time.RFC3339), r.Identifier)
		}
	}
	pushed := b.heldByStripe(t, rows)
	cells := 0
	for _, hours := range b.stripe.fake.MeterWindows("neon_compute") {
		cells += len(hours)
	}
	if accepted := b.stripe.fake.AcceptedMeterEvents(); pushed < 100 || cells != pushed || accepted != pushed {
		t.Errorf("Stripe accepted %d events into %d hours; the ledger records %d pushed: want equal (and many)", accepted, cells, pushed)
	}
	values := map[string]string{}
	for _, r := range b.stripe.fake.Requests() {
		if r.Path != "/v1/billing/meter_events" {
			continue
		}
		id, v := r.Form.Get("identifier"), r.Form.Get("payload[value]")
		if old, ok := values[id]; ok && old != v {
			t.Errorf("identifier %s was sent with %s and %s", id, old, v)
		}
		values[id] = v
	}
	out := b.command(t, "billing", "push", "--dry-run")
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cus_") { // the table's rows only
			continue
		}
		if h, err := time.Parse(time.RFC3339, f[3]); err != nil || h.Before(windowTo) {
			t.Errorf("after the next start a dry run still acts on: %s", l)
		}
	}
	t.Logf("%d values pushed, %d meter events accepted; dry run: %s", pushed, b.stripe.fake.AcceptedMeterEvents(), lastLine(out))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// logged reports whether one line of log holds every part.
func logged(log string, parts ...string) bool {
	for _, l := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}
