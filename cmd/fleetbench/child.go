package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childRun is one run of the neonmeter binary.
type childRun struct {
	name       string
	start, end time.Time // simulated
	real       time.Duration
	maxRSS     int64 // bytes, the child's peak resident set
	err        error
	tail       string // the end of its output, for a failure's report
}

// env is the children's environment: this process's, without any NEONMETER_ setting, plus the
// simulator's API, the budget, the database and the shared clock, then extra.
func (b *benchRun) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NEONMETER_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"NEONMETER_NEON_API_URL="+b.apiURL,
		"NEONMETER_NEON_API_KEY="+b.apiKey,
		"NEONMETER_NEON_CONSUMPTION_RATE="+strconv.FormatFloat(b.o.Budget, 'f', -1, 64),
		"NEONMETER_NEON_CONSUMPTION_BURST=1", // the simulator's bucket holds one token
		"NEONMETER_CLICKHOUSE_ADDR="+b.o.ClickHouse,
		"NEONMETER_CLICKHOUSE_DATABASE="+b.o.Database,
		"NEONMETER_SIM_CLOCK="+b.clock.String(),
		"NEONMETER_LOG_LEVEL=info",
		// The budgeted cycle re-reads this much before a rolling project's complete hours and
		// starts a project without progress this far back.
		"NEONMETER_COLLECT_LOOKBACK="+b.o.Lookback.String(),
	)
	return append(append(env, b.scheduleEnv()...), extra...)
}

// scheduleEnv sets the schedule and deadline collect derives its run from. A budgeted cycle
// spends the budget of the shorter of the schedule's interval and the deadline, so both follow
// --cycle; a full sweep of a big fleet may take simulated hours, so it gets a daily schedule
// and a long deadline.
func (b *benchRun) scheduleEnv() []string {
	if b.o.Mode == modeFullsweep {
		return []string{"NEONMETER_COLLECT_SCHEDULE=0 0 * * *", "NEONMETER_COLLECT_DEADLINE=23h"}
	}
	schedule, _ := cycleCron(b.o.Cycle) // validated with the flags
	return []string{"NEONMETER_COLLECT_SCHEDULE=" + schedule, "NEONMETER_COLLECT_DEADLINE=" + (b.o.Cycle - time.Second).String()}
}

// cycleCron is the cron schedule of one cycle every d.
func cycleCron(d time.Duration) (string, error) {
	switch {
	case d < time.Hour && d%time.Minute == 0 && time.Hour%d == 0:
		return fmt.Sprintf("*/%d * * * *", int(d.Minutes())), nil
	case d >= time.Hour && d%time.Hour == 0 && (24*time.Hour)%d == 0:
		return fmt.Sprintf("0 */%d * * *", int(d.Hours())), nil
	}
	return "", fmt.Errorf("--cycle %v: a budgeted cycle's budget follows a cron schedule, so the cycle must divide an hour (1m, 5m, 15m, 30m, …) or a day (1h, 2h, 6h, …)", d)
}

// checkBinary makes sure the binary runs and knows the shared clock.
func (b *benchRun) checkBinary(ctx context.Context) error {
	if _, err := os.Stat(b.o.Bin); err != nil {
		return fmt.Errorf("--bin: %w (build it with go build -o bin/ ./cmd/neonmeter)", err)
	}
	cmd := exec.CommandContext(ctx, b.o.Bin, "config")
	cmd.Env = b.env()
	out, _ := cmd.Output() // config exits 2 on settings serve would refuse; the list is printed first
	if !bytes.Contains(out, []byte("NEONMETER_SIM_CLOCK")) {
		return fmt.Errorf("%s does not know NEONMETER_SIM_CLOCK: it would run on the real clock; rebuild it from this tree", b.o.Bin)
	}
	return nil
}

// runChild runs the binary with args and env, logging its output to the run's log file and
// recording its simulated span and peak RSS.
func (b *benchRun) runChild(ctx context.Context, name string, args, env []string) childRun {
	r := childRun{name: name, start: b.clock.Now()}
	fmt.Fprintf(b.logF, "=== %s %s: %s %s\n", r.start.Format(time.RFC3339), name, b.o.Bin, strings.Join(args, " "))
	tail := &tailBuffer{max: 4096}
	cmd := exec.CommandContext(ctx, b.o.Bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = teeWriter{b.logF, tail}, teeWriter{b.logF, tail}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	began := time.Now()
	if r.err = cmd.Start(); r.err == nil {
		stop := make(chan struct{})
		peak := make(chan int64)
		go func() { peak <- watchPeakRSS(cmd.Process.Pid, stop) }()
		r.err = cmd.Wait()
		close(stop)
		r.maxRSS = <-peak
	}
	r.real, r.end = time.Since(began), b.clock.Now()
	if r.err != nil {
		r.tail = tail.String()
		fmt.Fprintf(b.log, "fleetbench %s: %s failed at %s: %v\n", b.o.Mode, name, r.end.Format(time.RFC3339), r.err)
	}
	b.res.children = append(b.res.children, r)
	return r
}

// teeWriter writes to both; the log file's errors do not stop the child.
type teeWriter struct {
	f    *os.File
	tail *tailBuffer
}

func (t teeWriter) Write(p []byte) (int, error) {
	_, _ = t.f.Write(p)
	return t.tail.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// watchPeakRSS returns the peak resident set of process pid (its VmHWM, bytes), read every
// 200 ms until stop closes; growth in the last 200 ms of its life is missed. The rusage a wait
// returns cannot serve: Linux carries the forking process's peak over into the child's
// ru_maxrss at exec, so it reports this harness's size, not the collector's.
func watchPeakRSS(pid int, stop <-chan struct{}) int64 {
	path := fmt.Sprintf("/proc/%d/status", pid)
	var peak int64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			peak = max(peak, vmHWM(b))
		}
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// vmHWM reads the VmHWM line of a /proc/<pid>/status text, in bytes; 0 when absent.
func vmHWM(status []byte) int64 {
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// selfMaxRSS is this process's peak resident set (the simulator and the verification), bytes.
func selfMaxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
