package main

import (
	"errors"
	"flag"
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

// config loads and validates the configuration; a bad setting is a usage error.
func (e *Env) config() (Config, error) {
	c, err := LoadConfig()
	if err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// logger builds the structured logger the configuration asks for, writing to stderr.
func (e *Env) logger(c Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.Stderr, opts))
}

// parse parses a command's flags; -h prints its usage and stops the command.
func (e *Env) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(e.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}
