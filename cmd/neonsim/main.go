// Command neonsim serves a simulated fleet of Neon projects (package neon/sim) over HTTP, for
// demos and manual tests of neonmeter against something that answers like Neon's API v2.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/simclock"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// envAPIKey supplies --api-key when the flag is absent, keeping the key out of process listings.
const envAPIKey = "NEONSIM_API_KEY"

// shutdownTimeout bounds how long in-flight requests may finish after SIGINT/SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "neonsim:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "neonsim:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// defineFlags declares every flag of neonsim on fs.
func defineFlags(fs *flag.FlagSet, cfg *sim.Config, faults *sim.Faults, addr *string, history *time.Duration, clk *clockFlags) {
	fs.IntVar(&cfg.Projects, "projects", sim.DefaultProjects, "number of projects across the four orgs (at least 4)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the fleet; the same seed gives the same fleet and usage")
	fs.StringVar(addr, "addr", "127.0.0.1:8090", "listen address (port 0 picks a free port)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "accept only \"Authorization: Bearer <key>\"; empty accepts anything (default $"+envAPIKey+")")
	fs.Float64Var(&cfg.ConsumptionRatePerMin, "consumption-rate", 0, "requests per minute allowed on both consumption routes together (0 = unlimited)")
	fs.IntVar(&cfg.ConsumptionBurst, "consumption-burst", sim.DefaultConsumptionBurst, "burst of the consumption bucket")
	fs.Float64Var(&cfg.GeneralRatePerMin, "general-rate", 0, "requests per minute allowed on all other routes (0 = unlimited)")
	fs.IntVar(&cfg.GeneralBurst, "general-burst", sim.DefaultGeneralBurst, "burst of the general bucket")
	fs.DurationVar(&cfg.OperationDelay, "operation-delay", 0, "how long operations stay running; mutations meanwhile get 423")
	fs.DurationVar(history, "history", sim.DefaultHistory, "how far back from now usage starts")
	fs.DurationVar(&clk.scale, "time-scale", 0, "run on an accelerated clock: one simulated hour per this much real time (e.g. 5s); 0 = real time")
	fs.StringVar(&clk.start, "start", "", "simulated time at start-up, RFC 3339 (default now); with --time-scale or alone")
	fs.StringVar(&clk.spec, "clock", "", "the whole clock as a spec shared with neonmeter: start=<RFC 3339>,anchor=<RFC 3339 real time>,hour=<duration>; excludes --time-scale and --start")
	fs.Float64Var(&cfg.ActiveShare, "active-share", 0, "fleet-scale activity model: share of projects running in any hour (0 < x ≤ 0.5); 0 = the profile mix of small test fleets")
	fs.Float64Var(&faults.Rate429, "fault-429", 0, "fraction of API requests answered 429")
	fs.Float64Var(&faults.Rate500, "fault-500", 0, "fraction of API requests answered 500")
	fs.Float64Var(&faults.Rate503, "fault-503", 0, "fraction of API requests answered 503")
	fs.Float64Var(&faults.Rate423, "fault-423", 0, "fraction of API requests answered 423")
	fs.Float64Var(&faults.SlowRate, "fault-slow", 0, "fraction of API requests delayed by --fault-slow-delay")
	fs.DurationVar(&faults.SlowDelay, "fault-slow-delay", 2*time.Second, "delay of slow requests")
	fs.Float64Var(&faults.TruncatedRate, "fault-truncated", 0, "fraction of API requests answered 200 with a body cut in the middle")
	fs.Float64Var(&faults.MalformedRate, "fault-malformed", 0, "fraction of API requests answered 200 with valid JSON of the wrong shape")
	fs.Float64Var(&faults.RepeatPageRate, "fault-repeat-page", 0, "fraction of consumption requests with a cursor answered with the previous page")
	fs.Float64Var(&faults.UnavailableRate, "fault-unavailable", 0, "fraction of GET /projects pages listing their last projects as unavailable")
	fs.Int64Var(&faults.Seed, "fault-seed", 1, "seed of the fault sequence")
}

// run parses flags, prints the base URL and the orgs, and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("neonsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     sim.Config
		faults  sim.Faults
		addr    string
		history time.Duration
		clk     clockFlags
	)
	defineFlags(fs, &cfg, &faults, &addr, &history, &clk)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: neonsim [flags]

Serves a simulated fleet of Neon projects: Neon's API v2 under /api/v2 (consumption history,
projects, endpoints, operations) and ground truth under /debug (truth, projects/{id}, stats).
Four orgs share the projects: free (consumption 403), launch and scale (v2 consumption) and a
legacy-plan org (legacy consumption route). Uses the real clock unless --time-scale, --start or
--clock set a simulated one (printed as "clock <spec>": give neonmeter the same spec to share it);
on a simulated clock the rate limits count per simulated minute. Stops on SIGINT or SIGTERM.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv(envAPIKey)
	}
	clock, accelerated, err := clk.resolve(time.Now())
	if err != nil {
		return usageError{err}
	}
	if accelerated {
		// Everything runs on the simulated clock, the rate buckets too: limits count per
		// simulated minute.
		cfg.Now, cfg.RateNow = clock.Now, clock.Now
	}
	cfg.HistoryStart = clock.Now().Add(-history)

	s, err := sim.New(cfg)
	if err != nil {
		return usageError{err}
	}
	s.SetFaults(faults)
	var spec string
	if accelerated {
		spec = clock.String()
	}
	return serve(ctx, s, cfg, spec, addr, stdout, stderr)
}

// clockFlags are --time-scale, --start and --clock.
type clockFlags struct {
	scale time.Duration
	start string
	spec  string
}

// resolve builds the simulator's clock at the real instant now; accelerated is false when no
// clock flag was given (plain real time, the simulator's default).
func (f clockFlags) resolve(now time.Time) (clock simclock.Clock, accelerated bool, err error) {
	switch {
	case f.spec != "" && (f.scale != 0 || f.start != ""):
		return clock, false, errors.New("--clock excludes --time-scale and --start")
	case f.spec != "":
		clock, err = simclock.Parse(f.spec)
		if err != nil {
			return clock, false, fmt.Errorf("--clock: %w", err)
		}
		return clock, true, nil
	case f.scale < 0:
		return clock, false, fmt.Errorf("--time-scale %v: must be positive (0 = real time)", f.scale)
	}
	start, hour := now, cmp.Or(f.scale, time.Hour)
	if f.start != "" {
		if start, err = time.Parse(time.RFC3339, f.start); err != nil {
			return clock, false, fmt.Errorf("--start %q: want RFC 3339 like 2026-11-01T00:00:00Z", f.start)
		}
	}
	clock, err = simclock.New(start, now, hour)
	if err != nil {
		return clock, false, fmt.Errorf("--time-scale: %w", err)
	}
	return clock, f.scale != 0 || f.start != "", nil
}

// serve listens on addr, prints the base URL and the orgs, and serves s until ctx ends.
func serve(ctx context.Context, s *sim.Sim, cfg sim.Config, clockSpec, addr string, stdout, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "neonsim: base URL http://%s/api/v2 (%d projects, seed %d)\n", ln.Addr(), cfg.Projects, cfg.Seed)
	for _, o := range s.Orgs() {
		route := "v2"
		if o.Legacy {
			route = "legacy"
		}
		fmt.Fprintf(stdout, "org %s plan %s projects %d route %s\n", o.ID, o.Plan, len(o.ProjectIDs), route)
	}
	if clockSpec != "" {
		fmt.Fprintf(stdout, "clock %s\n", clockSpec)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", logkey.Component, "neonsim")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
