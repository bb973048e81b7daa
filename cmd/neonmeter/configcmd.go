package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// ConfigCommand prints every setting with its environment variable, value, default and meaning.
type ConfigCommand struct{ *Env }

func (c *ConfigCommand) Synopsis() string {
	return "list every setting, its value, default and description"
}

func (c *ConfigCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("config", `Usage: neonmeter config

Lists every NEONMETER_* setting with its current value (secrets redacted), default and
description, then checks everything serve checks before it starts: every setting, the secret
files, the Neon key and organization, the cron schedule and the plan catalog (when one is set or
the default file exists). Exits 2 when anything is invalid.`)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, warnings, err := loadConfig(allSecrets)
	if perr := printConfig(c.Stdout, cfg); perr != nil {
		return perr
	}
	for _, w := range warnings {
		fmt.Fprintf(c.Stdout, "\nwarning: %s\n", w)
	}
	if err == nil {
		err = checkServe(c.Stdout, cfg)
	}
	if err != nil {
		return usageError{err}
	}
	return nil
}

// checkServe checks what serve needs beyond the settings themselves, and says on w which of
// its steps will run.
func checkServe(w io.Writer, cfg Config) error {
	if err := cfg.RequireNeon(true); err != nil {
		return err
	}
	cat, err := servedCatalog(cfg, slog.New(slog.DiscardHandler))
	switch {
	case err != nil:
		return err
	case cat == nil && cfg.StripeAPIKey != "":
		return errors.New(envPrefix + "_STRIPE_API_KEY is set: accounts sync and billing need a plan catalog (" + envPrefix + "_PLANS_FILE)")
	case cat == nil:
		fmt.Fprintf(w, "\nno plan catalog (%s_PLANS_FILE=%s does not exist): serve will only collect; billing and enforcement are off\n", envPrefix, cfg.PlansFile)
	default:
		fmt.Fprintf(w, "\nplan catalog %s: %d plan(s)\n", cfg.PlansFile, len(cat.Plans))
	}
	return nil
}
