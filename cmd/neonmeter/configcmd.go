package main

import (
	"context"
	"flag"
	"fmt"
)

// ConfigCommand prints every setting with its environment variable, value, default and meaning.
type ConfigCommand struct{ *Env }

func (c *ConfigCommand) Synopsis() string {
	return "list every setting, its value, default and description"
}

func (c *ConfigCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter config

Lists every NEONMETER_* setting with its current value (secrets redacted), default and
description, then validates the whole configuration; exits 2 when a setting is invalid.`)
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := LoadConfig()
	if perr := printConfig(c.Stdout, cfg); perr != nil {
		return perr
	}
	if err != nil {
		return usageError{err}
	}
	return nil
}
