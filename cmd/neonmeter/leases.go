package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
	"github.com/neonmeter/neonmeter/schema"
)

// The lease backends of NEONMETER_LEASE_BACKEND.
const (
	leaseBackendClickHouse = "clickhouse"
	leaseBackendZooKeeper  = "zookeeper"
)

// validateLeases checks the lease settings: a cluster needs ZooKeeper (the ClickHouse backend
// creates its tables on one server), and ZooKeeper needs addresses, a root, and a session
// short enough that a request stuck on a dead server fails while the lease still holds.
func (c Config) validateLeases(bad func(env, format string, a ...any)) {
	switch c.LeaseBackend {
	case leaseBackendClickHouse:
		if c.ClickHouseCluster != "" {
			bad("LEASE_BACKEND", "must be %s when NEONMETER_CLICKHOUSE_CLUSTER is set: the %s backend keeps its leases on one server, not on every replica",
				leaseBackendZooKeeper, leaseBackendClickHouse)
		}
		return
	case leaseBackendZooKeeper:
	default:
		bad("LEASE_BACKEND", "must be %s or %s, got %q", leaseBackendClickHouse, leaseBackendZooKeeper, c.LeaseBackend)
		return
	}
	if c.ZooKeeperAddrs == "" {
		bad("ZOOKEEPER_ADDRS", "is required with NEONMETER_LEASE_BACKEND=%s: the ensemble's host:port,...", leaseBackendZooKeeper)
	} else if _, err := schema.SplitAddrs(c.ZooKeeperAddrs); err != nil {
		bad("ZOOKEEPER_ADDRS", "%v", err)
	}
	if err := zkstore.CheckRoot(c.ZooKeeperRoot); err != nil {
		bad("ZOOKEEPER_ROOT", "%v", err)
	}
	switch {
	case c.ZooKeeperSession < time.Second || c.ZooKeeperSession > 2*time.Minute:
		bad("ZOOKEEPER_SESSION_TIMEOUT", "must be from 1s to 2m0s, got %v", c.ZooKeeperSession)
	case c.ZooKeeperSession > c.LeaseTTL/2:
		bad("ZOOKEEPER_SESSION_TIMEOUT", "%v must be at most half NEONMETER_LEASE_TTL (%v): a renewal stuck on a dead server fails only after two thirds of it",
			c.ZooKeeperSession, c.LeaseTTL)
	}
}

// LeasesCommand shows who holds each job's lease.
type LeasesCommand struct{ *Env }

func (c *LeasesCommand) Synopsis() string {
	return "show which neonmeter holds each job's lease (and, with --history, who held it before)"
}

const leasesUsage = `Usage: neonmeter leases [--job JOB] [--history N]

Prints, for each job that takes a lease (accounts, collect, billing, enforcement, retention), its
state in the lease backend (NEONMETER_LEASE_BACKEND): held (by host, pid and run id, since when,
last renewed when, expiring when unless renewed), released, expired (its holder stopped renewing:
killed, paused or cut off; the next contender takes it) or free. Times are the backend's clock.
With --history N it also prints each job's N newest acquisitions and releases, and for each
acquisition the generation it superseded and (ZooKeeper backend) when that one's lease ended: its
release, or its last heartbeat plus its TTL, never after the acquisition. Read-only: it takes no
lease.

Flags:`

func (c *LeasesCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("leases", leasesUsage)
	job := fs.String("job", "", "one job only")
	history := fs.Int("history", 0, "also print each job's N newest lease events")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	jobs := leaseJobs()
	if *job != "" {
		if !slices.Contains(jobs, *job) {
			return usagef("--job %q: must be one of %s", *job, strings.Join(jobs, ", "))
		}
		jobs = []string{*job}
	}
	if *history < 0 || *history > 10_000 {
		return usagef("--history must be from 0 to 10000, got %d", *history)
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		leases, err := d.Leases(ctx)
		if err != nil {
			return err
		}
		in, ok := leases.backend.(lease.Inspector)
		if !ok {
			return fmt.Errorf("the lease backend %s cannot be inspected", leases.where)
		}
		fmt.Fprintf(c.Stdout, "leases in %s\n\n", leases.where)
		if err := c.printStatus(ctx, in, jobs); err != nil {
			return err
		}
		if *history > 0 {
			return c.printHistory(ctx, in, jobs, *history)
		}
		return nil
	})
}

func (c *LeasesCommand) printStatus(ctx context.Context, in lease.Inspector, jobs []string) error {
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tGENERATION\tHOST\tPID\tRUN\tSINCE\tLAST HEARTBEAT\tEXPIRES")
	for _, job := range jobs {
		st, err := in.Status(ctx, job)
		if err != nil {
			return err
		}
		if st.Generation == 0 {
			fmt.Fprintf(tw, "%s\tfree\t-\t-\t-\t-\t-\t-\t-\n", job)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", job, leaseState(st), st.Generation, orDash(st.Holder.Host), st.Holder.PID,
			orDash(st.Holder.RunID), stamp(st.Since), stamp(st.LastHeartbeat), stamp(st.Expires))
	}
	return tw.Flush()
}

func (c *LeasesCommand) printHistory(ctx context.Context, in lease.Inspector, jobs []string, n int) error {
	fmt.Fprintln(c.Stdout)
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tJOB\tGENERATION\tEVENT\tHOST\tPID\tRUN\tPREVIOUS ENDED\tSUPERSEDED")
	for _, job := range jobs {
		events, err := in.Events(ctx, job, n)
		if err != nil {
			return err
		}
		for _, e := range events {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", stamp(e.At), job, e.Generation, e.Kind, orDash(e.Holder.Host), e.Holder.PID,
				orDash(e.Holder.RunID), stamp(e.PreviousEnd), orDash(e.Superseded))
		}
	}
	return tw.Flush()
}

// leaseState names a generation's state for people.
func leaseState(st lease.Status) string {
	switch {
	case st.Released:
		return "released"
	case st.Free:
		return "expired"
	}
	return "held"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
