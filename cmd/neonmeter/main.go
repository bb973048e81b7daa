// Command neonmeter meters Neon projects: it collects hourly consumption into ClickHouse,
// bills it through Stripe and keeps projects inside their plans.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/neon"
)

// Exit codes: 0 success, 1 the work failed, 2 bad usage or configuration; a second SIGINT or
// SIGTERM exits at once with 130 or 143 (shutdown.go).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// The first SIGINT or SIGTERM asks for a graceful stop; a second exits at once (130, 143).
	ctx, stop := notifyShutdown(os.Stderr)
	code := (&Main{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Main dispatches the first argument to a subcommand.
type Main struct {
	Stdout, Stderr io.Writer
}

// command is one subcommand. Run parses its own flags.
type command interface {
	Synopsis() string
	Run(ctx context.Context, args []string) error
}

// usageError marks errors caused by the invocation or configuration rather than the work.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func (m *Main) commands() []struct {
	name string
	cmd  command
} {
	env := &Env{Stdout: m.Stdout, Stderr: m.Stderr}
	return []struct {
		name string
		cmd  command
	}{
		{"migrate", &MigrateCommand{env}},
		{"collect", &CollectCommand{env}},
		{"backfill", &BackfillCommand{env}},
		{"status", &StatusCommand{env}},
		{"leases", &LeasesCommand{env}},
		{"serve", &ServeCommand{env}},
		{"plans", &PlansCommand{env}},
		{"accounts", &AccountsCommand{env}},
		{"billing", &BillingCommand{env}},
		{"enforce", &EnforceCommand{env}},
		{"report", &ReportCommand{env}},
		{"demo", &DemoCommand{env}},
		{"config", &ConfigCommand{env}},
		{"healthcheck", &HealthcheckCommand{env}},
		{"version", &VersionCommand{env}},
	}
}

// Run executes the subcommand named by args[0] and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	// A command's loggers (serve's, its stages', cron's) each hold a handler of their own on
	// Stderr: one lock serializes their writes, whatever Stderr is.
	m.Stderr = &lockedWriter{w: m.Stderr}
	cmds := m.commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		m.usage(m.Stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return m.exec(ctx, c.name, c.cmd, args[1:])
		}
	}
	fmt.Fprintf(m.Stderr, "neonmeter: unknown command %q\n\n", args[0])
	m.usage(m.Stderr, cmds)
	return exitUsage
}

// exec runs the command called name and returns the exit code. A panic in it is a failure like
// any other, reported through the redacting logger.
func (m *Main) exec(ctx context.Context, name string, cmd command, args []string) int {
	err := refusedKey(guarded(func() error { return cmd.Run(ctx, args) }))
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		cfg, _, _ := loadConfig(allSecrets)
		fmt.Fprintf(m.Stderr, "neonmeter %s: %v\n", name, cfg.redactor().Error(err))
		return exitUsage
	default:
		m.logger().Error("command failed", logkey.Command, name, logkey.Err, err)
		return exitFailure
	}
}

// refusedKey turns Neon's refusal of the API key into a configuration error naming the
// setting: no retry or re-run helps until someone changes the key.
func refusedKey(err error) error {
	if !errors.Is(err, neon.ErrUnauthorized) || errors.As(err, new(usageError)) {
		return err
	}
	return usageError{fmt.Errorf("%w; check %s_NEON_API_KEY (or %s_NEON_API_KEY_FILE): the key must be valid and may read %s_NEON_ORG_ID",
		err, envPrefix, envPrefix, envPrefix)}
}

// logger is the logger a failed command is reported with: the configured format and level, as
// far as the configuration loads (a bad setting was then reported as a usage error), with every
// secret that loaded redacted.
func (m *Main) logger() *slog.Logger {
	env := &Env{Stdout: m.Stdout, Stderr: m.Stderr}
	cfg, _, _ := loadConfig(allSecrets)
	return env.logger(cfg)
}

func (m *Main) usage(w io.Writer, cmds []struct {
	name string
	cmd  command
}) {
	fmt.Fprintln(w, `neonmeter meters Neon projects: collect hourly consumption into ClickHouse,
bill it through Stripe, and keep every project inside its plan.

Usage:
  neonmeter <command> [flags]

Commands:`)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.cmd.Synopsis())
	}
	fmt.Fprintln(w, `
Settings come from NEONMETER_* environment variables; "neonmeter config" lists them.
Run "neonmeter <command> -h" for a command's flags.

Exit codes: 0 success, 1 the work failed, 2 bad usage or configuration. A first SIGINT or
SIGTERM lets the step in flight finish (NEONMETER_SHUTDOWN_TIMEOUT); a second exits at once
with 130 or 143.`)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
