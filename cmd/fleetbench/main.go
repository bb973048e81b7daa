// Command fleetbench measures neonmeter's collection against a big simulated fleet on an
// accelerated clock: it serves the Neon simulator (neon/sim) in-process over loopback HTTP with
// its consumption bucket at the budget, migrates a fresh ClickHouse database with
// bin/neonmeter, runs collection cycles as child processes of the real binary for a simulated
// day on the clock both share (NEONMETER_SIM_CLOCK), reports every simulated hour as a markdown
// table and finally compares every stored (project, metric, hour) of the day with the
// simulator's ground truth. It is a benchmark tool; neonmeter never links it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/neonmeter/neonmeter/neon/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// Modes of collection.
const (
	modeBudgeted  = "budgeted"
	modeFullsweep = "fullsweep"
	modeBoth      = "both"
)

// options are the flags of one benchmark.
type options struct {
	Projects    int
	ActiveShare float64
	Budget      float64       // consumption calls per simulated minute (the simulator's bucket)
	Burst       int           // the simulator's consumption burst
	GeneralRate float64       // other calls per simulated minute
	Hours       int           // length of the simulated day
	Hour        time.Duration // real duration of one simulated hour
	Mode        string
	Cycle       time.Duration // simulated interval between cycle starts
	Lookback    time.Duration // fullsweep: hours re-read before the previous window's end
	Settle      time.Duration // longest simulated time after the day to wait for full coverage
	MaxReal     time.Duration // longest real time of the cycles; 0 = no limit
	Start       time.Time     // first hour of the day (simulated)
	Seed        int64
	ClickHouse  string
	Database    string
	KeepDB      bool
	Bin         string
	LogDir      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var start string
	fs.IntVar(&o.Projects, "projects", 20_000, "projects in the simulated fleet (four orgs; the free one has no consumption history)")
	fs.Float64Var(&o.ActiveShare, "active-share", 0.1, "share of projects running a compute in any hour (the simulator's fleet-scale model)")
	fs.Float64Var(&o.Budget, "budget", 30, "consumption calls per simulated minute: the simulator's bucket and NEONMETER_NEON_CONSUMPTION_RATE")
	fs.IntVar(&o.Burst, "burst", 10, "burst of the simulator's consumption bucket: on an accelerated clock a few simulated seconds absorb the jitter of real requests (neonmeter paces with burst 1); an hour may see budget×60 + burst calls")
	fs.Float64Var(&o.GeneralRate, "general-rate", 700, "other Neon calls per simulated minute (the simulator's general bucket)")
	fs.IntVar(&o.Hours, "hours", 24, "simulated hours of the day that is measured and verified")
	fs.DurationVar(&o.Hour, "hour", 10*time.Second, "real duration of one simulated hour")
	fs.StringVar(&o.Mode, "mode", modeBudgeted, "budgeted (neonmeter collect: one budgeted cycle per run), fullsweep (every project of every org each cycle, as today) or both, one after the other on the same fleet")
	fs.DurationVar(&o.Cycle, "cycle", 30*time.Minute, "simulated interval between the starts of two cycles (a longer cycle starts the next at once)")
	fs.DurationVar(&o.Lookback, "lookback", 3*time.Hour, "what collection re-reads: each full sweep before the previous sweep's window end; the budgeted cycle before a rolling project's complete hours, and where a project without progress starts (NEONMETER_COLLECT_LOOKBACK; at least the 2 h Neon may revise, plus one)")
	fs.DurationVar(&o.Settle, "settle", 12*time.Hour, "after the day, keep cycling until every hour of it is collected final, for at most this much simulated time")
	fs.DurationVar(&o.MaxReal, "max-real", 0, "stop cycling after this much real time even if the day is not final, then verify and report as far as it got (0 = no limit)")
	fs.StringVar(&start, "start", "", "first simulated hour of the day, RFC 3339 (default: hours+settle+3 hours before now, inside Neon's 168 h hourly window of the real clock)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the simulated fleet")
	fs.StringVar(&o.ClickHouse, "clickhouse", envOr("NEONMETER_TEST_CLICKHOUSE_ADDR", "127.0.0.1:19000"), "ClickHouse native address host:port")
	fs.StringVar(&o.Database, "database", "", "database to create and use (default fleetbench_<random>); it must not exist")
	fs.BoolVar(&o.KeepDB, "keep-db", false, "keep the database afterwards (default: dropped)")
	fs.StringVar(&o.Bin, "bin", "bin/neonmeter", "the neonmeter binary to run")
	fs.StringVar(&o.LogDir, "log-dir", "", "directory for the children's logs (default: a new temporary directory)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: fleetbench [flags]

Runs neonmeter's collection (child processes of --bin) against an in-process Neon simulator on
an accelerated clock for a simulated day, prints a markdown table per simulated hour (calls
against the budget, freshness, oldest project, collector RSS) and verifies every stored
(project, metric, hour) of the day against the simulator's ground truth. Exit 1 on any
mismatch, missing or extra value.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if start != "" {
		t, err := time.Parse(time.RFC3339, start)
		if err != nil {
			return o, fmt.Errorf("--start %q: want RFC 3339 like 2026-11-01T00:00:00Z", start)
		}
		o.Start = t.UTC()
	}
	return o, o.validate()
}

// validate reports every bad flag at once.
func (o *options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Projects < 4 || o.Projects > 10_000_000 {
		bad("--projects %d: must be from 4 to 10,000,000", o.Projects)
	}
	if !(o.ActiveShare > 0 && o.ActiveShare <= sim.MaxActiveShare) {
		bad("--active-share %v: must be in (0, %v]", o.ActiveShare, sim.MaxActiveShare)
	}
	if !(o.Budget >= 1) || !(o.GeneralRate >= 1) {
		bad("--budget %v and --general-rate %v: must be at least 1 call per minute", o.Budget, o.GeneralRate)
	}
	if o.Burst < 1 || o.Burst > 100 {
		bad("--burst %d: must be from 1 to 100", o.Burst)
	}
	if o.Hours < 1 || o.Hours > 7*24 {
		bad("--hours %d: must be from 1 to 168", o.Hours)
	}
	if o.Hour < 100*time.Millisecond {
		bad("--hour %v: must be at least 100ms of real time", o.Hour)
	}
	if o.Mode != modeBudgeted && o.Mode != modeFullsweep && o.Mode != modeBoth {
		bad("--mode %q: must be budgeted, fullsweep or both", o.Mode)
	}
	if o.Cycle < time.Minute {
		bad("--cycle %v: must be at least 1m", o.Cycle)
	} else if _, err := cycleCron(o.Cycle); err != nil && o.Mode != modeFullsweep {
		errs = append(errs, err)
	}
	if o.Lookback < 3*time.Hour || o.Lookback%time.Hour != 0 {
		bad("--lookback %v: must be whole hours, at least 3h (the 2 h Neon may revise, plus one)", o.Lookback)
	}
	if o.Settle < 3*time.Hour {
		bad("--settle %v: must be at least 3h, or the day's last hours are never final", o.Settle)
	}
	if o.MaxReal < 0 {
		bad("--max-real %v: must not be negative", o.MaxReal)
	}
	if !o.Start.IsZero() && !o.Start.Equal(o.Start.Truncate(time.Hour)) {
		bad("--start %v: must be on the hour", o.Start)
	}
	if o.Database != "" && !validIdent(o.Database) {
		bad("--database %q: must be letters, digits and underscores", o.Database)
	}
	return errors.Join(errs...)
}

func validIdent(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run parses the flags, runs the benchmark of each mode asked for and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	modes := []string{o.Mode}
	if o.Mode == modeBoth {
		modes = []string{modeFullsweep, modeBudgeted}
	}
	var results []*result
	for _, m := range modes {
		mo := o
		mo.Mode = m
		res, err := bench(ctx, mo, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		writeReport(stdout, res)
		results = append(results, res)
	}
	if len(results) > 1 {
		writeComparison(stdout, results)
	}
	var failed []string
	for _, r := range results {
		if !r.verify.ok() {
			failed = append(failed, r.opts.Mode)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("ground truth differs in mode %s (see the report)", strings.Join(failed, ", "))
	}
	return nil
}
