// Command soak runs the whole neonmeter loop for a simulated week or month under faults and
// checks it: the Neon simulator and the recording fake Stripe in-process over loopback HTTP,
// `neonmeter serve` replicas (children of the real binary) on an accelerated clock they share
// (NEONMETER_SIM_CLOCK: only the clock source differs), a seeded schedule of faults (kill -9 of
// replicas, SIGSTOP of lease holders, Neon 429 storms, 5xx bursts and duplicated pages, Stripe
// outages and lost responses, operators' pushes and enforcement cycles) and of changes to the
// world (plan changes, new customers, deleted projects, revisions up to 48 h late), then a table
// of invariants compared with the simulator's ground truth. Exit 1 on any mismatch.
// docs/reliability.md has the schedule, the checks and the numbers.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// options are the flags of one run.
type options struct {
	Days       int
	Projects   int
	Replicas   int
	Seed       int64
	Hour       time.Duration // real duration of a simulated hour
	Budget     float64       // consumption calls per simulated minute (Neon's bucket and neonmeter's rate)
	Kills      int
	Settle     time.Duration // simulated time after the span at most spent settling
	Start      time.Time     // simulated; default: the span crosses a month's end in its middle
	ClickHouse string
	Database   string
	KeepDB     bool
	Bin        string
	LogDir     string
	Rules      string // the Prometheus alert rules
	// afterChecks, for tests, runs on the world after the checks, before it is closed.
	afterChecks func(context.Context, *world) error
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var start string
	fs.IntVar(&o.Days, "days", 30, "simulated days of the run")
	fs.IntVar(&o.Projects, "projects", 20_000, "projects in the simulated fleet (four orgs; free is not collected, legacy is collected but not billed)")
	fs.IntVar(&o.Replicas, "replicas", 3, "serve replicas sharing the database (leases decide which runs each job)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the fleet and of the fault schedule")
	fs.DurationVar(&o.Hour, "hour", 2*time.Second, "real duration of one simulated hour")
	fs.Float64Var(&o.Budget, "budget", 30, "consumption calls per simulated minute: Neon's bucket and NEONMETER_NEON_CONSUMPTION_RATE (tight: the budgeted scheduler must choose)")
	fs.IntVar(&o.Kills, "kills", 50, "kill -9 of serve replicas at moments drawn from the seed")
	fs.DurationVar(&o.Settle, "settle", 36*time.Hour, "after the span, the most simulated time spent until every hour of it is collected final")
	fs.StringVar(&start, "start", "", "first simulated hour, RFC 3339 (default: the span's middle is the end of a month, before today)")
	fs.StringVar(&o.ClickHouse, "clickhouse", envOr("NEONMETER_TEST_CLICKHOUSE_ADDR", "127.0.0.1:19000"), "ClickHouse native address host:port")
	fs.StringVar(&o.Database, "database", "", "database to create and use (default soak_<random>); it must not exist")
	fs.BoolVar(&o.KeepDB, "keep-db", false, "keep the database afterwards")
	fs.StringVar(&o.Bin, "bin", "bin/neonmeter", "the neonmeter binary the replicas run")
	fs.StringVar(&o.Rules, "rules", "deploy/prometheus/neonmeter.rules.yml", "the alert rules evaluated (with promtool) over the replicas' scraped metrics")
	fs.StringVar(&o.LogDir, "log-dir", "", "directory for the replicas' logs and the accounts files (default: a new temporary directory)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: soak [flags]\n\nRuns serve replicas against a simulated fleet and a fake Stripe on an accelerated clock under a seeded\nschedule of faults, then checks usage, billing, enforcement and the simulator's wake counter against\nthe ground truth and prints a table. Exit 1 on any mismatch.\n\nFlags:\n")
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
			return o, fmt.Errorf("--start %q: want RFC 3339 like 2026-10-28T00:00:00Z", start)
		}
		o.Start = t.UTC()
	}
	return o, o.validate()
}

// validate reports every bad flag at once.
func (o *options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Days < 2 || o.Days > 62 {
		bad("--days %d: must be from 2 to 62", o.Days)
	}
	if o.Projects < 40 || o.Projects > 1_000_000 {
		bad("--projects %d: must be from 40 to 1,000,000", o.Projects)
	}
	if o.Replicas < 1 || o.Replicas > 9 {
		bad("--replicas %d: must be from 1 to 9", o.Replicas)
	}
	if o.Hour < 500*time.Millisecond {
		bad("--hour %v: must be at least 500ms of real time (a cycle must fit in a few simulated minutes)", o.Hour)
	}
	if !(o.Budget >= 1) {
		bad("--budget %v: must be at least 1 call per minute", o.Budget)
	}
	if o.Kills < 0 {
		bad("--kills %d: must not be negative", o.Kills)
	}
	if o.Settle < 16*time.Hour {
		bad("--settle %v: must be at least 16h (a revision 48 h late is re-read within the rolling sweep's 12 h, plus the 2 h provisional window)", o.Settle)
	}
	if !o.Start.IsZero() && !o.Start.Equal(o.Start.Truncate(time.Hour)) {
		bad("--start %v: must be on the hour", o.Start)
	}
	if o.Database != "" && strings.Trim(o.Database, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		bad("--database %q: must be lower-case letters, digits and underscores", o.Database)
	}
	return errors.Join(errs...)
}

// defaults fills the start, the database and the log directory.
func (o *options) defaults(now time.Time) error {
	if o.Start.IsZero() {
		half := time.Duration(o.Days) * 12 * time.Hour
		monthEnd := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		if monthEnd.Add(half + o.Settle).After(now) {
			monthEnd = monthEnd.AddDate(0, -1, 0)
		}
		o.Start = monthEnd.Add(-half).Truncate(time.Hour)
	}
	if o.Database == "" {
		o.Database = "soak_" + strings.ToLower(rand.Text()[:12])
	}
	if o.LogDir == "" {
		dir, err := os.MkdirTemp("", "soak-")
		if err != nil {
			return err
		}
		o.LogDir = dir
	}
	return os.MkdirAll(o.LogDir, 0o755)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run parses the flags, runs the soak and prints its report; an error when a check failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	rep, err := soak(ctx, o, stderr)
	if rep != nil {
		rep.write(stdout)
	}
	if err != nil {
		return err
	}
	if failed := rep.failed(); len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}
