package main

import (
	"context"
	"fmt"
	"runtime"
)

// VersionCommand prints the build version.
type VersionCommand struct{ *Env }

func (c *VersionCommand) Synopsis() string { return "print the version" }

func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("version", "Usage: neonmeter version\n\nPrints the version and the Go toolchain it was built with.")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "neonmeter %s (%s)\n", version, runtime.Version())
	return nil
}
