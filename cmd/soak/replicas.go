package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// leaseTTL is the replicas' lease TTL (real time): a killed holder blocks its job this long.
const leaseTTL = 5 * time.Second

// replica is one slot of serve; the process running in it changes with every kill.
type replica struct {
	slot   int
	addr   string // its metrics listener
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// fleet runs the replicas and the operators' commands against the world.
type fleet struct {
	w        *world
	env      []string
	replicas []*replica
	logF     *os.File
	logMu    sync.Mutex
}

// env is the children's environment: this process's without any NEONMETER_ setting, plus the
// world's services, the shared clock and the soak's settings. The schedule and deadlines are
// simulated time (serve fires on the shared clock); the lease TTL is real time.
func (w *world) env(plansFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NEONMETER_") {
			env = append(env, kv)
		}
	}
	var ids []string
	for _, o := range w.orgs {
		ep := "v2"
		if o.Legacy {
			ep = "legacy"
		}
		ids = append(ids, o.ID+":"+ep)
	}
	every, cron := w.cycle()
	return append(env,
		"NEONMETER_NEON_API_URL="+w.neonURL, "NEONMETER_NEON_API_KEY="+w.apiKey,
		"NEONMETER_NEON_ORG_IDS="+strings.Join(ids, ","),
		"NEONMETER_NEON_CONSUMPTION_RATE="+strconv.FormatFloat(w.o.Budget, 'f', -1, 64),
		"NEONMETER_NEON_CONSUMPTION_BURST=1", "NEONMETER_NEON_GENERAL_RATE=2000",
		"NEONMETER_CLICKHOUSE_ADDR="+w.o.ClickHouse, "NEONMETER_CLICKHOUSE_DATABASE="+w.o.Database,
		"NEONMETER_SIM_CLOCK="+w.clock.String(),
		"NEONMETER_COLLECT_SCHEDULE="+cron, "NEONMETER_COLLECT_DEADLINE="+(every-time.Minute).String(),
		// Data counts as stale only after a few cycles of it.
		"NEONMETER_ENFORCEMENT_STALE_AFTER="+max(3*time.Hour, 3*every).String(),
		"NEONMETER_ENFORCEMENT_MAX_ACTIONS="+strconv.Itoa(w.o.Projects),
		// Revisions come up to 48 h late: each re-read reaches that far behind a project's progress,
		// plus two cycles between two reads of a project.
		"NEONMETER_COLLECT_LOOKBACK="+max(72*time.Hour, 50*time.Hour+2*every).String(),
		"NEONMETER_STRIPE_API_URL="+w.stripeU, "NEONMETER_STRIPE_API_KEY="+w.stripeK,
		"NEONMETER_PLANS_FILE="+plansFile, "NEONMETER_BILLING_GRACE=24h",
		"NEONMETER_ENFORCEMENT_MODE=enforce", "NEONMETER_ENFORCEMENT_GRACE=0s", "NEONMETER_ENFORCEMENT_MAX_PERCENT=100",
		"NEONMETER_LEASE_TTL="+leaseTTL.String(), "NEONMETER_SHUTDOWN_TIMEOUT=5s",
		"NEONMETER_LOG_LEVEL=info", "NEONMETER_LOG_FORMAT=json",
	)
}

// cycleRealCost is about what one serve cycle over 2,000 projects costs in real time on a
// small machine (ClickHouse writes, HTTP); a cycle grows with the fleet, and the schedule leaves
// it at least that much.
const cycleRealCost = 15 * time.Second

// realCost is what a cycle over the soak's fleet is given in real time.
func (w *world) realCost() time.Duration {
	return max(cycleRealCost, cycleRealCost*time.Duration(w.o.Projects)/2000)
}

// cycle is serve's simulated cycle interval and its cron schedule: every 15 minutes, or on a
// fast clock the shortest interval dividing a day that lasts realCost of real time. The
// collector's deadline is simulated time too (a minute less than the interval), so on a fast
// clock a 15-minute deadline would be a fraction of a real second.
func (w *world) cycle() (time.Duration, string) {
	need := w.clock.Simulated(w.realCost())
	for _, m := range []int{15, 30} {
		if time.Duration(m)*time.Minute >= need {
			return time.Duration(m) * time.Minute, fmt.Sprintf("*/%d * * * *", m)
		}
	}
	for _, h := range []int{1, 2, 3, 4, 6, 8, 12} {
		if time.Duration(h)*time.Hour >= need {
			return time.Duration(h) * time.Hour, fmt.Sprintf("0 */%d * * *", h)
		}
	}
	return 24 * time.Hour, "0 0 * * *"
}

func newFleet(w *world, env []string) (*fleet, error) {
	f, err := os.Create(filepath.Join(w.dir, "replicas.log"))
	if err != nil {
		return nil, err
	}
	fl := &fleet{w: w, env: env, logF: f}
	for slot := range w.o.Replicas {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		fl.replicas = append(fl.replicas, &replica{slot: slot, addr: addr})
	}
	return fl, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// logWriter prefixes a child's lines in the shared log file.
type logWriter struct {
	f    *fleet
	name string
}

func (l logWriter) Write(p []byte) (int, error) {
	l.f.logMu.Lock()
	defer l.f.logMu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line != "" {
			fmt.Fprintf(l.f.logF, "[%s] %s", l.name, line)
		}
	}
	return len(p), nil
}

// start runs serve in slot.
func (fl *fleet) start(r *replica) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(fl.w.o.Bin, "serve", "--initial-sweep=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // none outlives the soak
	cmd.Env = append(slices.Clone(fl.env), "NEONMETER_LISTEN_ADDR="+r.addr)
	lw := logWriter{f: fl, name: fmt.Sprintf("replica %d", r.slot)}
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start replica %d: %w", r.slot, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	r.starts++
	return nil
}

// kill sends SIGKILL to slot's process, waits for it and starts a new one.
func (fl *fleet) kill(r *replica) error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-done
	return fl.start(r)
}

// stop sends SIGTERM to every replica and waits for them.
func (fl *fleet) stop() {
	for _, r := range fl.replicas {
		if p := r.pid(); p != 0 {
			_ = syscall.Kill(p, syscall.SIGCONT)
			_ = syscall.Kill(p, syscall.SIGTERM)
		}
	}
	for _, r := range fl.replicas {
		r.mu.Lock()
		done := r.done
		r.mu.Unlock()
		if done == nil {
			continue
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(r.pid(), syscall.SIGKILL)
			<-done
		}
	}
}

// command runs a one-shot neonmeter command (an operator's) and returns its exit code.
func (fl *fleet) command(ctx context.Context, args ...string) (int, error) {
	cmd := exec.CommandContext(ctx, fl.w.o.Bin, args...)
	cmd.Env = fl.env
	lw := logWriter{f: fl, name: strings.Join(args, " ")}
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// mustCommand runs a command that must succeed (the set-up's).
func (fl *fleet) mustCommand(ctx context.Context, args ...string) error {
	code, err := fl.command(ctx, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d (see %s)", code, fl.logF.Name())
	}
	if err != nil {
		return fmt.Errorf("neonmeter %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
