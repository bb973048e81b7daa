package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/finance/whatif"
	whatifstore "github.com/neonmeter/neonmeter/finance/whatif/chstore"
	"github.com/neonmeter/neonmeter/plans"
)

const simulateUsage = `Usage: neonmeter plans simulate --catalog FILE --period YYYY-MM [--format table|csv|json] [--costs FILE]

Re-rates a past plan period's real usage (usage_hourly) under a draft plan catalog, without
touching Stripe, Neon or the ledger: it only reads ClickHouse. Per plan and customer (and each
plan's total, customer *), side by side:
  - the units billing would have pushed per metric (billing's own conversion and rounding) vs the
    units billing's ledger accounts for;
  - the projects enforcement would have warned, throttled or suspended (enforcement's own
    evaluation of the period's usage at its end, without grace) vs what its audit says it did.
With a cost table (--costs, default NEONMETER_COSTS_FILE) it adds revenue (units × each plan's
price; actual units at the current catalog's, simulated at the draft's), Neon's cost of the usage
and the margin. The draft is validated like NEONMETER_PLANS_FILE, the cost table against both. Simulate a closed period: the last hours of an
open one are not billed yet.

Exit codes: 0 done, 2 bad usage or catalog, 1 the database could not be read.`

// simulate runs plans simulate.
func (c *PlansCommand) simulate(ctx context.Context, args []string) error {
	fs := newFlags("plans simulate", simulateUsage)
	file := fs.String("catalog", "", "the draft plan catalog (required)")
	period := fs.String("period", "", "the plan period, a UTC month YYYY-MM (required)")
	format := fs.String("format", whatif.FormatTable, "table, csv or json")
	costs := fs.String("costs", "", "cost table for revenue and margin (default NEONMETER_COSTS_FILE; none: no margin)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	month, err := time.Parse("2006-01", *period)
	if err != nil {
		return usagef("--period %q: want a month like 2026-11", *period)
	}
	f, err := whatif.ParseFormat(*format)
	if err != nil {
		return usageError{err}
	}
	if *file == "" {
		return usagef("--catalog FILE is required: the draft plan catalog to simulate")
	}
	return c.withDeps(useClickHousePass, func(d *deps) error {
		draft, err := loadDraft(*file, d.cfg.DefaultPlan)
		if err != nil {
			return err
		}
		wcfg, err := simulateConfig(ctx, d, draft)
		if err != nil {
			return err
		}
		if *costs == "" {
			*costs = d.cfg.CostsFile
		}
		if wcfg.Money, err = loadMoney(*costs, wcfg.Current, draft); err != nil {
			return err
		}
		rep, err := whatif.Simulate(ctx, wcfg, month)
		if err != nil {
			return err
		}
		return whatif.Write(c.Stdout, rep, f)
	})
}

// loadDraft reads and validates a draft catalog as the real one is: the catalog's own rules,
// then enforcement's (a default plan, autoscaling for soft limits). Problems name the file.
func loadDraft(file, defaultPlan string) (*plans.Catalog, error) {
	cat, err := plans.Load(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("--catalog: %w", err)}
	}
	if errs := enforcement.CheckCatalog(cat, defaultPlan); len(errs) > 0 {
		return nil, usageError{fmt.Errorf("--catalog %s (NEONMETER_DEFAULT_PLAN %q): %w", file, defaultPlan, errors.Join(errs...))}
	}
	return cat, nil
}

// loadMoney checks the cost table against both catalogs; no file: no money.
func loadMoney(file string, current, draft *plans.Catalog) (*whatif.Money, error) {
	if file == "" {
		return nil, nil
	}
	cur, err := finance.LoadCosts(file, current)
	if err != nil {
		return nil, usageError{fmt.Errorf("--costs (NEONMETER_COSTS_FILE) against NEONMETER_PLANS_FILE: %w", err)}
	}
	dft, err := finance.LoadCosts(file, draft)
	if err != nil {
		return nil, usageError{fmt.Errorf("--costs (NEONMETER_COSTS_FILE) against --catalog: %w", err)}
	}
	return &whatif.Money{Current: cur, Draft: dft}, nil
}

// simulateConfig wires the read-only stores and both catalogs.
func simulateConfig(ctx context.Context, d *deps, draft *plans.Catalog) (whatif.Config, error) {
	conn, err := d.Migrated(ctx)
	if err != nil {
		return whatif.Config{}, err
	}
	cur, err := d.Catalog()
	if err != nil {
		return whatif.Config{}, err
	}
	db := d.cfg.ClickHouseDB
	return whatif.Config{Billing: billingstore.New(conn, db), Enforcement: enforcementstore.New(conn, db),
		Outcomes: whatifstore.New(conn, db), Accounts: accountsstore.New(conn, db), Current: cur, Draft: draft,
		DefaultPlan: d.cfg.DefaultPlan, Policy: policyFromConfig(d.cfg)}, nil
}
