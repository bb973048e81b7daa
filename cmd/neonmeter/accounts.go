package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/plans"
)

// AccountsCommand keeps the project → (Stripe customer, plan) mapping.
type AccountsCommand struct{ *Env }

func (c *AccountsCommand) Synopsis() string {
	return "project → Stripe customer and plan: sync, import FILE, list"
}

const accountsUsage = `Usage:
  neonmeter accounts sync [--dry-run]
  neonmeter accounts import [--dry-run] FILE
  neonmeter accounts list [--project ID] [--at TIME] [--unmapped] [--usage-window 168h]

Keeps, in ClickHouse, which Stripe customer owns each Neon project and on which plan, with the
history of changes, so that the plan in force at any hour is known.

  sync    Pages through Stripe (NEONMETER_STRIPE_API_KEY): customers whose metadata
          neon_project_id names their projects (comma separated), and their subscriptions,
          whose price lookup_key (or product metadata neonmeter_plan) names the plan. Records
          changes only, at Stripe's own timestamps.
  import  Reads a CSV file with the columns project_id,customer_id,plan,valid_from (RFC 3339
          or a date; empty means now) for platforms that keep the mapping elsewhere.
  list    Shows the mapping in force (or one project's history with --project), including
          projects with usage that nobody owns: they get NEONMETER_DEFAULT_PLAN.

Plans come from NEONMETER_PLANS_FILE. Run "neonmeter migrate" first.
Exit codes: 0 done, 1 the work failed (or Stripe's data has problems, listed), 2 bad usage,
configuration or input file.`

func (c *AccountsCommand) Run(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "accounts", accountsUsage, args, subcommand{"sync", c.sync}, subcommand{"import", c.importFile}, subcommand{"list", c.list})
}

func (c *AccountsCommand) flags(name, usage string) *flag.FlagSet {
	return newFlags("accounts "+name, usage)
}

// catalog loads NEONMETER_PLANS_FILE and checks NEONMETER_DEFAULT_PLAN against it.
func loadCatalog(cfg Config) (*plans.Catalog, error) {
	cat, err := plans.Load(cfg.PlansFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s_PLANS_FILE: %w", envPrefix, err)}
	}
	if _, err := accounts.DefaultPlan(cat, cfg.DefaultPlan); err != nil {
		return nil, usageError{fmt.Errorf("%s_DEFAULT_PLAN: %w", envPrefix, err)}
	}
	return cat, nil
}

func (c *AccountsCommand) sync(ctx context.Context, args []string) error {
	fs := c.flags("sync", `Usage: neonmeter accounts sync [--dry-run]

Reads every Stripe customer, subscription and product and appends to account_history the
changes it lacks. A second sync right after the first writes nothing.

Flags:`)
	dryRun := fs.Bool("dry-run", false, "print the changes instead of writing them")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the accounts lease instead of refusing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	return c.withDeps(useStripeKey|useClickHousePass, func(d *deps) error {
		syncer, err := d.Syncer(ctx, false)
		if err != nil {
			return err
		}
		var res accounts.SyncResult
		err = d.leases.commandIf(ctx, !*dryRun, jobAccounts, *wait, func(ctx context.Context) (err error) {
			res, err = syncer.Sync(ctx, *dryRun)
			return err
		})
		if err != nil {
			return err
		}
		return c.printSync(res, *dryRun, d.cfg.DefaultPlan)
	})
}

// printSync writes a sync's changes (dry run), its summary and Stripe's data problems, which
// fail the command.
func (c *AccountsCommand) printSync(res accounts.SyncResult, dryRun bool, defaultPlan string) error {
	verb := changesDone(c.Stdout, res.Changes, dryRun)
	fmt.Fprintf(c.Stdout, "accounts sync: %d customers, %d subscriptions, %d projects in Stripe; %s %d change(s); %d project(s) with usage owned by nobody (plan %s)\n",
		res.Customers, res.Subscriptions, res.Projects, verb, len(res.Changes), len(res.Unmapped), defaultPlan)
	if len(res.Problems) > 0 {
		fmt.Fprintf(c.Stdout, "\n%d problem(s) in Stripe's data; the projects concerned were left as they were:\n", len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintf(c.Stdout, "  %s\n", p)
		}
		return fmt.Errorf("%d problem(s) in Stripe's data (listed above)", len(res.Problems))
	}
	return nil
}

// newAccountsSyncer builds the Stripe accounts sync of the configuration; reg may be nil. f (the
// accounts lease's gate) fences its writes; nil only for work that writes nothing.
func newAccountsSyncer(cfg Config, sc *client.API, cat *plans.Catalog, conn driver.Conn, reg prometheus.Registerer, log *slog.Logger, f fence) (*accounts.Syncer, error) {
	var m *accounts.Metrics
	if reg != nil {
		var err error
		if m, err = accounts.NewMetrics(reg); err != nil {
			return nil, err
		}
	}
	var store accounts.Store = accountsstore.New(conn, cfg.ClickHouseDB)
	if f != nil {
		store = fencedAccountsStore{store, f}
	}
	now, _ := cfg.clock()
	syncer, err := accounts.NewSyncer(accounts.Config{Now: now, Stripe: sc, Store: store, Catalog: cat,
		DefaultPlan: cfg.DefaultPlan, Logger: log, Metrics: m})
	if err != nil {
		return nil, usageError{err}
	}
	return syncer, nil
}

func (c *AccountsCommand) importFile(ctx context.Context, args []string) error {
	fs := c.flags("import", `Usage: neonmeter accounts import [--dry-run] FILE

Reads a CSV file with a header naming project_id, customer_id, plan and valid_from (any order)
and records the rows that change the stored history. valid_from is RFC 3339 or a date
(midnight UTC); empty means now. An empty plan means the customer has no plan (the default
applies); an empty customer and plan mean nobody owns the project from then on. Every problem
of the file is reported and nothing is written unless the whole file is valid.

Flags:`)
	dryRun := fs.Bool("dry-run", false, "print the changes instead of writing them")
	wait := fs.Bool("wait", false, "wait while another neonmeter holds the accounts lease instead of refusing")
	rest, err := c.parsePositional(fs, args, 1)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("accounts import needs the CSV file")
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		cat, err := d.Catalog()
		if err != nil {
			return err
		}
		clock, _ := d.cfg.clock() // a soak's operator imports on the simulated clock
		now := clock().UTC()
		rows, err := readImport(rest[0], cat, now)
		if err != nil {
			return err
		}
		leases, err := d.Leases(ctx)
		if err != nil {
			return err
		}
		store := fencedAccountsStore{accountsstore.New(d.conn, d.cfg.ClickHouseDB), leases.gate(jobAccounts)}
		var res accounts.ImportResult
		err = leases.commandIf(ctx, !*dryRun, jobAccounts, *wait, func(ctx context.Context) (err error) {
			res, err = accounts.Import(ctx, store, rows, now, *dryRun, nil)
			return err
		})
		if err != nil {
			return err
		}
		verb := changesDone(c.Stdout, res.Changes, *dryRun)
		fmt.Fprintf(c.Stdout, "accounts import: %d row(s) read from %s; %s %d change(s)\n", res.Rows, rest[0], verb, len(res.Changes))
		return nil
	})
}

// readImport reads and checks the whole CSV file; a problem is a usage error naming the file.
func readImport(path string, cat *plans.Catalog, now time.Time) ([]accounts.Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{err}
	}
	defer f.Close()
	rows, err := accounts.ParseCSV(path, f, cat, now)
	if err != nil {
		return nil, usageError{err}
	}
	return rows, nil
}

func (c *AccountsCommand) list(ctx context.Context, args []string) error {
	fs := c.flags("list", `Usage: neonmeter accounts list [--project ID] [--at TIME] [--unmapped] [--usage-window 168h]

Shows who owns each project and its plan in force, with projects that had usage in the usage
window but belong to nobody (marked unmapped; they get NEONMETER_DEFAULT_PLAN). With --project,
shows that project's whole history instead.

Flags:`)
	project := fs.String("project", "", "show the history of this project `ID`")
	atFlag := fs.String("at", "", "show the mapping in force at this `TIME` (RFC 3339; default now)")
	onlyUnmapped := fs.Bool("unmapped", false, "list only projects nobody owns")
	window := fs.Duration("usage-window", accounts.DefaultUnmappedWindow, "projects with usage in this `DURATION` before --at count as metered")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	at := time.Now().UTC()
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return usagef("--at: %v", err)
		}
		at = t.UTC()
	}
	if *window <= 0 {
		return usagef("--usage-window must be positive")
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		conn, err := d.ClickHouse(ctx)
		if err != nil {
			return err
		}
		store := accountsstore.New(conn, d.cfg.ClickHouseDB)
		if *project != "" {
			return c.history(ctx, store, d.cfg, *project, at)
		}
		used, err := store.UsageProjects(ctx, at.Add(-*window), at.Add(time.Hour))
		if err != nil {
			return err
		}
		all, err := accounts.AssignmentsAt(ctx, store, at, used, d.cfg.DefaultPlan)
		if err != nil {
			return err
		}
		c.printAssignments(all, at, d.cfg.DefaultPlan, *onlyUnmapped)
		return nil
	})
}

// printAssignments writes the mapping in force at at, every project or only the unmapped ones.
func (c *AccountsCommand) printAssignments(all []accounts.Assignment, at time.Time, defaultPlan string, onlyUnmapped bool) {
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tCUSTOMER\tPLAN\tSINCE\tNOTE")
	mapped, unmapped := 0, 0
	for _, a := range all {
		note := ""
		switch {
		case !a.Mapped():
			note = "unmapped: default plan"
			unmapped++
		case a.Default:
			note = "no plan in force: default plan"
			mapped++
		default:
			mapped++
		}
		if onlyUnmapped && a.Mapped() {
			continue
		}
		since := "-"
		if !a.Since.IsZero() {
			since = a.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ProjectID, dash(a.CustomerID), a.Plan, since, note)
	}
	tw.Flush()
	fmt.Fprintf(c.Stdout, "\n%d project(s) at %s: %d owned by a customer, %d owned by nobody (plan %s)\n",
		len(all), at.Format(time.RFC3339), mapped, unmapped, defaultPlan)
}

func (c *AccountsCommand) history(ctx context.Context, store accounts.Store, cfg Config, project string, at time.Time) error {
	tl, err := accounts.LoadTimelines(ctx, store, []string{project}, accounts.EndOfTime(), cfg.DefaultPlan)
	if err != nil {
		return err
	}
	h := tl.History(project)
	now := tl.At(project, at)
	fmt.Fprintf(c.Stdout, "project %s at %s: customer %s, plan %s", project, at.Format(time.RFC3339), dash(now.CustomerID), now.Plan)
	if now.Default {
		fmt.Fprint(c.Stdout, " (default plan)")
	}
	fmt.Fprintln(c.Stdout)
	if len(h) == 0 {
		fmt.Fprintln(c.Stdout, "no recorded history: nobody owns this project")
		return nil
	}
	fmt.Fprintln(c.Stdout)
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VALID FROM\tCUSTOMER\tPLAN\tSOURCE\tBASIS\tSUBSCRIPTION\tRECORDED")
	for _, r := range h {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ValidFrom.Format(time.RFC3339), dash(r.CustomerID), dash(r.Plan),
			r.Source, r.Basis, dash(r.SubscriptionID), r.RecordedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// changesDone says what became of a sync's or an import's changes, printing them first on a
// dry run.
func changesDone(w io.Writer, changes []accounts.ProjectChange, dryRun bool) string {
	if !dryRun {
		return "recorded"
	}
	printChanges(w, changes)
	return "would record"
}

func printChanges(w io.Writer, changes []accounts.ProjectChange) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tVALID FROM\tCUSTOMER\tPLAN\tBASIS")
	for _, ch := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.ProjectID, ch.At.Format(time.RFC3339), dash(ch.CustomerID), dash(ch.Plan), ch.Basis)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
