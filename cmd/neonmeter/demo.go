package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// DemoCommand runs the main job end to end against a simulated fleet.
type DemoCommand struct{ *Env }

func (c *DemoCommand) Synopsis() string {
	return "run the whole job on a simulated fleet: collect 72 h, bill to stripe-mock, plan enforcement"
}

const demoUsage = `Usage: neonmeter demo [--projects 2000] [--seed 7] [--hours 72]

Starts the Neon simulator on a loopback port (real HTTP, a random API key), migrates the
ClickHouse database NEONMETER_CLICKHOUSE_DATABASE at NEONMETER_CLICKHOUSE_ADDR, collects the
last 72 hours of every simulated organization, collects again to show that a re-run writes
nothing, and prints a summary and a query of usage_hourly to try. Then it runs the rest of the
job: the v2 orgs' projects are given to customers (accounts import), their metered usage is
pushed to Stripe at NEONMETER_STRIPE_API_URL (make demo starts stripe-mock there), twice to show
the second push sends nothing, and enforcement plans its actions in dry-run.

Flags:`

func (c *DemoCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	projects := fs.Int("projects", 2000, "projects in the simulated fleet")
	seed := fs.Int64("seed", 7, "seed of the simulated fleet")
	hours := fs.Int("hours", 72, "hours of history to collect")
	neonsimPath := fs.String("neonsim", "", "the neonsim binary to run (default: the one beside neonmeter, else on PATH)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *hours < 1 || *hours > 167 {
		return usagef("--hours must be between 1 and 167 (Neon's hourly window), got %d", *hours)
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.logger(cfg)

	bin, err := findNeonsim(*neonsimPath)
	if err != nil {
		return err
	}
	simProc, err := startSimulator(ctx, bin, *projects, *seed)
	if err != nil {
		return err
	}
	defer simProc.stop()
	base, apiKey := simProc.base, simProc.apiKey
	fmt.Fprintf(c.Stdout, "simulator: %s (%d projects, seed %d)\n", base, *projects, *seed)

	cfg.NeonAPIURL, cfg.NeonAPIKey = base, Secret(apiKey) // the simulator's, for every command part that checks them
	deps := c.deps(cfg, nil)
	defer deps.close()
	conn, err := deps.ClickHouse(ctx)
	if err != nil {
		return err
	}
	if _, err := schema.Migrate(ctx, conn, cfg.ClickHouseDB, log); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "clickhouse: %s, database %s migrated\n\n", cfg.ClickHouseAddr, cfg.ClickHouseDB)

	client, err := neon.NewClient(neon.Config{
		BaseURL: base, APIKey: apiKey, ConsumptionRatePerMin: 6000, ConsumptionBurst: 10,
		GeneralRatePerMin: 60000, GeneralBurst: 50, Registerer: prometheus.NewRegistry(), Logger: log,
	})
	if err != nil {
		return err
	}
	deps.neon = client // paced for the simulator, not for Neon
	now := time.Now().UTC().Truncate(time.Hour)
	window := collector.Window{From: now.Add(-time.Duration(*hours) * time.Hour), To: now}

	exampleOrg, err := c.collectOrgs(ctx, deps, simProc.orgs, window)
	if err != nil {
		return err
	}
	if err := c.billAndEnforce(ctx, deps, simProc.orgs); err != nil {
		return err
	}
	wakes, err := simProc.wakes(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "\nwakes of idle computes (simulator's counter): %d\n", wakes)

	return c.printExample(ctx, deps, exampleOrg, window)
}

// collectOrgs collects window twice for every simulated org (the second pass shows a re-run
// writes nothing) and prints a row per pass; it returns a v2 org to query as the example.
func (c *DemoCommand) collectOrgs(ctx context.Context, deps *deps, orgs []demoOrg, window collector.Window) (string, error) {
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "org\tplan\tendpoint\tpass\tprojects\tvalues\trows written\trevisions\tAPI calls\tretries\tseconds\toutcome\t")
	var exampleOrg string
	for _, org := range orgs {
		ep := collector.EndpointV2
		if org.Legacy {
			ep = collector.EndpointLegacy
		}
		orgCfg := deps.cfg
		orgCfg.NeonOrgID, orgCfg.NeonOrgIDs, orgCfg.NeonConsumption = org.ID, nil, string(ep)
		orgLog := deps.log
		if org.Plan == "free" {
			orgLog = slog.New(slog.DiscardHandler) // its 403 is expected and shown in the table
		}
		orgDeps := *deps // the same clients, another org
		orgDeps.cfg, orgDeps.log, orgDeps.accts = orgCfg, orgLog, nil
		col, err := orgDeps.Collector(ctx, "", nil, nil, nil)
		if err != nil {
			return "", err
		}
		for pass := 1; pass <= 2; pass++ {
			sum, err := col.Sweep(ctx, window)
			outcome := sum.Outcome
			if errors.Is(err, neon.ErrNoConsumptionHistory) {
				outcome = "403: plan has no consumption history"
			} else if err != nil {
				return "", fmt.Errorf("org %s: %w", org.ID, err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t\n", org.ID, org.Plan, ep, pass,
				sum.Projects, sum.ValuesFetched, sum.RowsWritten, sum.Revisions, sum.APIRequests, sum.Retries,
				sum.Duration.Seconds(), outcome)
			if err != nil {
				break
			}
			if exampleOrg == "" && !org.Legacy {
				exampleOrg = org.ID
			}
		}
	}
	return exampleOrg, tw.Flush()
}

// printExample prints a query of usage_hourly to try, and its answer.
func (c *DemoCommand) printExample(ctx context.Context, deps *deps, exampleOrg string, window collector.Window) error {
	q := collectorstore.MetricTotalsQuery(exampleOrg, window.From, window.To)
	text, err := q.Literal(deps.cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(deps.cfg.ClickHouseAddr)
	fmt.Fprintf(c.Stdout, "\nTry it: clickhouse-client --host %s --port %s --query \"...\"\n%s\n\n", host, port, text)
	totals, err := collectorstore.New(deps.conn, deps.cfg.ClickHouseDB).MetricTotals(ctx, exampleOrg, window.From, window.To)
	if err != nil {
		return fmt.Errorf("example query: %w", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\thours\ttotal\t")
	for _, t := range totals {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", t.Metric, t.Hours, t.Total)
	}
	return tw.Flush()
}

// billAndEnforce runs the rest of the main job on the demo fleet: every project of the v2 orgs
// is given to a customer (five projects each, plans free, pro and enterprise in turn) through an
// accounts import, metered usage is pushed to Stripe (stripe-mock, which checks every request's
// shape; NEONMETER_STRIPE_API_URL), and enforcement plans its actions in dry-run.
func (c *DemoCommand) billAndEnforce(ctx context.Context, deps *deps, orgs []demoOrg) error {
	cfg, client, conn := deps.cfg, deps.neon, deps.conn
	deps.log = slog.New(slog.DiscardHandler)
	cat, err := deps.Catalog()
	if err != nil {
		return err
	}
	periodStart := time.Date(time.Now().UTC().Year(), time.Now().UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	var csv strings.Builder
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	planNames := []string{"free", "pro", "enterprise"}
	n := 0
	for _, org := range orgs {
		if org.Legacy || org.Plan == "free" {
			continue
		}
		ids, err := listProjectIDs(ctx, client, org.ID)
		if err != nil {
			return err
		}
		for _, p := range ids {
			fmt.Fprintf(&csv, "%s,cus_demo_%04d,%s,%s\n", p, n/5, planNames[(n/5)%3], periodStart.Format(time.RFC3339))
			n++
		}
	}
	rows, err := accounts.ParseCSV("demo accounts", strings.NewReader(csv.String()), cat, time.Now())
	if err != nil {
		return err
	}
	imp, err := accounts.Import(ctx, accountsstore.New(conn, cfg.ClickHouseDB), rows, time.Now(), false, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "\naccounts: %d projects of the v2 orgs given to %d customers on free, pro and enterprise (%d changes recorded)\n",
		n, (n+4)/5, len(imp.Changes))

	if cfg.StripeAPIKey == "" {
		deps.stripeKey = "sk_test_demo" // stripe-mock takes any test key
	}
	sc, err := deps.Stripe()
	if err != nil {
		return err
	}
	if _, err := billing.Setup(ctx, sc, cat, true); err != nil {
		return fmt.Errorf("billing setup against %s (make demo starts stripe-mock): %w", cfg.StripeAPIURL, err)
	}
	pusher, err := deps.Pusher(ctx, nil, 5000) // stripe-mock has no rate limit
	if err != nil {
		return err
	}
	leases := deps.leases
	for pass := 1; pass <= 2; pass++ {
		var res billing.Result
		err := leases.command(ctx, jobBilling, false, func(ctx context.Context) (err error) {
			res, err = pusher.Push(ctx, false)
			return err
		})
		if err != nil {
			return fmt.Errorf("billing push: %w", err)
		}
		fmt.Fprintf(c.Stdout, "billing push %d to %s: %d (customer, meter, hour) values decided, %d requests, %d confirmed, %d pending, %d late\n",
			pass, cfg.StripeAPIURL, len(res.Actions), res.Requests, res.Pushed, res.Pending, len(res.Late))
	}

	rec, err := deps.Enforcer(ctx, policyFromConfig(cfg), nil, true)
	if err != nil {
		return err
	}
	var rep *enforcement.Report
	err = leases.command(ctx, jobEnforcement, false, func(ctx context.Context) (err error) {
		rep, err = rec.Cycle(ctx, enforcement.CycleOptions{DryRun: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("enforcement: %w", err)
	}
	levels := map[enforcement.Level]int{}
	actions := 0
	for _, r := range rep.Rows {
		levels[r.Level]++
		actions += len(r.Actions)
	}
	fmt.Fprintf(c.Stdout, "enforcement (dry run): %d projects evaluated, %d at warning, %d over a limit, %d Neon reads, %d actions planned, 0 applied\n",
		rep.Fleet, levels[enforcement.LevelWarning], levels[enforcement.LevelOver], rep.Reads, actions)
	fmt.Fprintln(c.Stdout, "  see them with: neonmeter enforce --dry-run (same settings)")
	return nil
}

// listProjectIDs lists an org's projects through the Neon API, newest first.
func listProjectIDs(ctx context.Context, client *neon.Client, orgID string) ([]string, error) {
	var ids []string
	for page, err := range client.ListProjects(ctx, neon.ListProjectsQuery{OrgID: orgID}) {
		if err != nil {
			return nil, fmt.Errorf("list projects of %s: %w", orgID, err)
		}
		for _, p := range page.Projects {
			ids = append(ids, p.ID)
		}
	}
	return ids, nil
}
