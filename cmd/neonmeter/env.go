package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// errHelp is returned when a command printed its help on request.
var errHelp = errors.New("help requested")

// Env is what every command shares: output streams, and helpers that load configuration and
// build a logger from it.
type Env struct {
	Stdout, Stderr io.Writer
}

// config loads and validates the configuration, reading every secret file; a bad setting is
// a usage error.
func (e *Env) config() (Config, error) { return e.configFor(allSecrets) }

// configFor loads and validates the configuration, reading only the secret files of use; a
// bad setting is a usage error. Warnings about the secret files go to the log.
func (e *Env) configFor(use secretUse) (Config, error) {
	c, warnings, err := loadConfig(use)
	if err != nil {
		return c, usageError{err}
	}
	for _, w := range warnings {
		e.logger(c).Warn(w)
	}
	return c, nil
}

// withDeps loads the configuration, reading only the secret files of use, and runs work with
// the command's dependencies (deps.go), released when work returns.
func (e *Env) withDeps(use secretUse, work func(d *deps) error) error {
	cfg, err := e.configFor(use)
	if err != nil {
		return err
	}
	d := e.deps(cfg, nil)
	defer d.close()
	return work(d)
}

// logger builds the structured logger the configuration asks for, writing to stderr. Every
// record passes through the redactor of the configured secrets first.
func (e *Env) logger(c Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(e.Stderr, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(e.Stderr, opts)
	}
	return slog.New(c.redactor().Handler(h))
}

// parse parses a command's flags; -h prints its usage and stops the command.
func (e *Env) parse(fs *flag.FlagSet, args []string) error {
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// parseFlags parses the flags up to the first argument that is none, leaving the arguments to
// the caller; -h prints the usage and stops the command.
func (e *Env) parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(e.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	return nil
}

// parsePositional parses fs from args allowing up to max positional arguments among the
// flags (so "import FILE --dry-run" works), and returns them.
func (e *Env) parsePositional(fs *flag.FlagSet, args []string, max int) ([]string, error) {
	var pos []string
	for {
		if err := e.parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) > max {
		return nil, usagef("unexpected arguments: %s", strings.Join(pos[max:], " "))
	}
	return pos, nil
}

// subcommand is one verb of a command group such as "billing push".
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string) error
}

// dispatch runs the subcommand args[0] names. Without one (or with a flag first) it prints the
// group's usage on -h, and otherwise says which subcommands exist.
func (e *Env) dispatch(ctx context.Context, group, usage string, args []string, subs ...subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := flag.NewFlagSet(group, flag.ContinueOnError)
		fs.Usage = func() { fmt.Fprintln(fs.Output(), usage) }
		if err := e.parse(fs, args); err != nil {
			return err
		}
		return usagef("say which: %s %s", group, strings.Join(names, ", "))
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:])
		}
	}
	return usagef("unknown %s command %q: %s", group, args[0], strings.Join(names, ", "))
}

// newFlags is the flag set of a command ("migrate") or subcommand ("billing push"); -h prints
// usage and the flags.
func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}
