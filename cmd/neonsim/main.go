// Command neonsim serves a simulated fleet of Neon projects (package neon/sim) over HTTP, for
// demos and manual tests of neonmeter against something that answers like Neon's API v2.
package main

import (
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

// run parses flags, prints the base URL and the orgs, and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("neonsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     sim.Config
		faults  sim.Faults
		addr    string
		history time.Duration
	)
	fs.IntVar(&cfg.Projects, "projects", sim.DefaultProjects, "number of projects across the four orgs (at least 4)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the fleet; the same seed gives the same fleet and usage")
	fs.StringVar(&addr, "addr", "127.0.0.1:8090", "listen address (port 0 picks a free port)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "accept only \"Authorization: Bearer <key>\"; empty accepts anything (default $"+envAPIKey+")")
	fs.Float64Var(&cfg.ConsumptionRatePerMin, "consumption-rate", 0, "requests per minute allowed on both consumption routes together (0 = unlimited)")
	fs.IntVar(&cfg.ConsumptionBurst, "consumption-burst", sim.DefaultConsumptionBurst, "burst of the consumption bucket")
	fs.Float64Var(&cfg.GeneralRatePerMin, "general-rate", 0, "requests per minute allowed on all other routes (0 = unlimited)")
	fs.IntVar(&cfg.GeneralBurst, "general-burst", sim.DefaultGeneralBurst, "burst of the general bucket")
	fs.DurationVar(&cfg.OperationDelay, "operation-delay", 0, "how long operations stay running; mutations meanwhile get 423")
	fs.DurationVar(&history, "history", sim.DefaultHistory, "how far back from now usage starts")
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
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: neonsim [flags]

Serves a simulated fleet of Neon projects: Neon's API v2 under /api/v2 (consumption history,
projects, endpoints, operations) and ground truth under /debug (truth, projects/{id}, stats).
Four orgs share the projects: free (consumption 403), launch and scale (v2 consumption) and a
legacy-plan org (legacy consumption route). Uses the real clock; stops on SIGINT or SIGTERM.

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
	cfg.HistoryStart = time.Now().Add(-history)

	s, err := sim.New(cfg)
	if err != nil {
		return usageError{err}
	}
	s.SetFaults(faults)
	return serve(ctx, s, cfg, addr, stdout, stderr)
}

// serve listens on addr, prints the base URL and the orgs, and serves s until ctx ends.
func serve(ctx context.Context, s *sim.Sim, cfg sim.Config, addr string, stdout, stderr io.Writer) error {
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
