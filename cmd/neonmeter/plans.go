package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/neonmeter/neonmeter/plans"
)

// PlansCommand works with the plan catalog.
type PlansCommand struct{ *Env }

func (c *PlansCommand) Synopsis() string {
	return "check the plan catalog (plans check FILE); re-rate a past period under a draft (plans simulate)"
}

const plansUsage = `Usage: neonmeter plans check [FILE]
       neonmeter plans simulate --catalog FILE --period YYYY-MM [--format table|csv|json]

Validates a plan catalog (default: NEONMETER_PLANS_FILE) and prints a summary of its plans.
Every problem is reported, each naming the file, line, plan, field and what is wrong: unknown
metrics, min CU above max CU, negative or malformed limits, duplicate plan names or lookup keys,
a billed or soft-limited metric without a Stripe meter or price, units that do not suit the
metric, and so on.

Exit codes: 0 the catalog is valid, 2 it is not (or it cannot be read).`

func (c *PlansCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("plans", plansUsage)
	if len(args) > 0 && args[0] == "simulate" {
		return c.simulate(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "check" {
		if err := c.parse(fs, args); err != nil {
			return err
		}
		return usagef("say which: plans check [FILE] or plans simulate --catalog FILE --period YYYY-MM")
	}
	rest, err := c.parsePositional(fs, args[1:], 1)
	if err != nil {
		return err
	}
	file := ""
	switch len(rest) {
	case 0:
		cfg, err := c.configFor(0)
		if err != nil {
			return err
		}
		file = cfg.PlansFile
	default:
		file = rest[0]
	}
	cat, err := plans.Load(file)
	if err != nil {
		return usageError{err}
	}
	printCatalog(c, file, cat)
	return nil
}

// printCatalog summarizes a valid catalog: one row per plan.
func printCatalog(c *PlansCommand, file string, cat *plans.Catalog) {
	fmt.Fprintf(c.Stdout, "%s: valid, %d plan(s)\n\n", file, len(cat.Plans))
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tCU MIN-MAX\tSUSPEND\tLOOKUP KEYS\tHARD LIMITS\tSOFT LIMITS\tOTHER LIMITS\tBILLED")
	for _, p := range cat.Plans {
		cu, suspend := "as is", "as is"
		if p.Neon.ManageAutoscaling {
			cu = fmt.Sprintf("%g-%g", p.Neon.MinCU, p.Neon.MaxCU)
		}
		switch {
		case p.Neon.ManageSuspend && p.Neon.SuspendTimeoutSeconds < 0:
			suspend = "never"
		case p.Neon.ManageSuspend:
			suspend = (time.Duration(p.Neon.SuspendTimeoutSeconds) * time.Second).String()
		}
		kinds := map[plans.LimitKind][]string{}
		for m, l := range p.Limits {
			kinds[l.Kind] = append(kinds[l.Kind], m)
		}
		var billed []string
		for m, b := range p.Billing {
			to := b.MeterEventName
			if to == "" {
				to = b.PriceID
			}
			billed = append(billed, fmt.Sprintf("%s→%s/%s", m, to, b.Unit))
		}
		sort.Strings(billed)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", p.Name, cu, suspend, strings.Join(p.LookupKeys, ","),
			len(kinds[plans.KindHard]), len(kinds[plans.KindSoft]), len(kinds[plans.KindNone]), len(billed))
	}
	tw.Flush()
}
