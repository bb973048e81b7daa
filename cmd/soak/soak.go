package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// quiet is how long before the span's end the schedule stops drawing events, so the last
// faults and revisions are over before the settle.
const quiet = 6 * time.Hour

// billingGrace is the replicas' NEONMETER_BILLING_GRACE (simulated).
const billingGrace = 24 * time.Hour

// soak runs one soak: set-up, the span under the schedule, the settle, the checks.
func soak(ctx context.Context, o options, log io.Writer) (*report, error) {
	began := time.Now()
	if err := o.defaults(began); err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return nil, usageError{fmt.Errorf("--bin: %w (build it with go build -o bin/ ./cmd/neonmeter)", err)}
	}
	end := o.Start.Add(time.Duration(o.Days) * 24 * time.Hour)
	events := Schedule(o.Seed, Plan{Start: o.Start, End: end, Replicas: o.Replicas, Kills: o.Kills, Quiet: quiet})
	rep := &report{o: o, end: end, events: events}
	fmt.Fprintf(log, "soak: %d projects, %d replica(s), %s to %s at %s per simulated hour, %d events; database %s, logs in %s\n",
		o.Projects, o.Replicas, o.Start.Format(time.RFC3339), end.Format(time.RFC3339), o.Hour, len(events), o.Database, o.LogDir)
	w, err := newWorld(ctx, o, log)
	if err != nil {
		return nil, err
	}
	defer w.close()
	cat, err := plans.Parse("soak-plans.yaml", []byte(catalog))
	if err != nil {
		return nil, err
	}
	fl, err := w.setUp(ctx)
	if err != nil {
		return nil, err
	}
	defer fl.logF.Close()
	rep.setup = time.Since(began)
	cond := newConductor(w, fl, &w.outage)
	for _, r := range fl.replicas {
		if err := fl.start(r); err != nil {
			return nil, err
		}
	}
	loop := time.Now()
	sc := &scraper{}
	sctx, stopScraping := context.WithCancel(ctx)
	scraped := make(chan struct{})
	go func() { defer close(scraped); sc.run(sctx, w, fl) }()
	err = cond.run(ctx, events, end)
	if err == nil {
		rep.settled, err = w.settle(ctx, end, end.Add(o.Settle))
	}
	stopped := w.clock.Now()
	stopScraping()
	<-scraped
	rep.scrapes = sc.scrapes()
	fl.stop()
	cond.bg.Wait()
	rep.loop = time.Since(loop)
	if err != nil {
		return rep, err
	}
	rep.tally, rep.stopped = cond.t, stopped
	// What the next cycle would do at once: push what a stopped push left, enforce on the last data.
	rep.finalPush, _ = fl.command(ctx, "billing", "push")
	rep.finalEnforce, _ = fl.command(ctx, "enforce")
	checked := time.Now()
	err = rep.runChecks(ctx, w, cat, stopped)
	rep.checks = time.Since(checked)
	if err == nil && o.afterChecks != nil {
		err = o.afterChecks(ctx, w)
	}
	return rep, err
}

// setUp migrates the database, creates the meters and the customers, imports the mapping,
// then anchors the shared clock and returns the replicas' fleet on it.
func (w *world) setUp(ctx context.Context) (*fleet, error) {
	plansFile, err := w.writeFile("plans.yaml", catalog)
	if err != nil {
		return nil, err
	}
	if err := w.anchor(); err != nil { // provisional: the set-up's commands read the span's start
		return nil, err
	}
	csv, err := w.mapInitial(ctx)
	if err != nil {
		return nil, err
	}
	csvFile, err := w.writeFile("accounts-initial.csv", csv)
	if err != nil {
		return nil, err
	}
	fl, err := newFleet(w, w.env(plansFile))
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{{"migrate"}, {"billing", "setup", "--apply"}, {"accounts", "import", csvFile}} {
		if err := fl.mustCommand(ctx, args...); err != nil {
			return nil, err
		}
	}
	if err := w.anchor(); err != nil {
		return nil, err
	}
	fl.env = w.env(plansFile)
	return fl, nil
}

// settle keeps the replicas running after the span until every project still in Neon has
// its hours up to end collected final by a re-read after the last revision (at least 14 h of
// the rolling sweep's 12 h), or until limit. It returns when it settled (zero if never).
func (w *world) settle(ctx context.Context, end, limit time.Time) (time.Time, error) {
	for {
		now := w.clock.Now()
		if !now.Before(limit) {
			return time.Time{}, nil
		}
		if !now.Before(end.Add(14 * time.Hour)) {
			if done, err := w.collectedFinal(ctx, end); err == nil && done {
				return now, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(w.clock.Real(time.Hour)):
		}
	}
}

// collectedFinal reports whether every project of the collected orgs still in Neon is
// collected final up to end.
func (w *world) collectedFinal(ctx context.Context, end time.Time) (bool, error) {
	var gone []string
	for p := range w.deleted {
		gone = append(gone, p)
	}
	want := 0
	for _, o := range w.orgs {
		want += len(o.ProjectIDs)
	}
	want -= len(gone)
	q := schema.Query{Name: "soak.final_through", Kind: schema.KindSelect, Args: []any{schema.UTC(end), gone}, SQL: `
SELECT countIf(final_through >= ?)
FROM (SELECT project_id, final_through FROM {db}.collection_progress FINAL WHERE NOT has(?, project_id))`}
	var n uint64
	err := q.Each(ctx, w.conn, w.o.Database, func(r schema.Row) error { return r.Scan(&n) })
	return err == nil && int(n) >= want, err
}

// count runs a count query ({db} is the soak's database).
func (w *world) count(ctx context.Context, sql string) (int, error) {
	var n uint64
	q := schema.Query{Name: "soak.count", Kind: schema.KindSelect, SQL: sql}
	err := q.Each(ctx, w.conn, w.o.Database, func(r schema.Row) error { return r.Scan(&n) })
	return int(n), err
}

// runChecks runs every check after the replicas stopped at stopped (simulated).
func (rep *report) runChecks(ctx context.Context, w *world, cat *plans.Catalog, stopped time.Time) error {
	from, to := rep.o.Start, rep.end
	usage, usageRevised, usageGone, err := w.checkUsage(ctx, from, to, nil)
	if err != nil {
		return err
	}
	bill, billBehind, ids, err := w.checkBilling(ctx, cat, from, to, billingGrace)
	if err != nil {
		return err
	}
	enf, err := w.checkEnforcement(ctx, cat, stopped)
	if err != nil {
		return err
	}
	secrets, err := w.checkSecrets(ctx, rep.scrapes)
	if err != nil {
		return err
	}
	abandoned, err := w.count(ctx, "SELECT count() FROM {db}.collection_runs FINAL WHERE outcome = 'abandoned'")
	if err != nil {
		return err
	}
	late, err := w.count(ctx, "SELECT count() FROM {db}.billing_late_adjustments")
	if err != nil {
		return err
	}
	alerts, err := checkAlerts(ctx, w.dir, rep.o.Rules, rep.scrapes, expectedAlerts(w.overLimit, abandoned, late, int(billBehind.bad)))
	if err != nil {
		return err
	}
	rep.rows = append(rep.rows, usage, usageRevised, usageGone, bill, billBehind, ids, enf, w.checkMutations(), w.checkWakes(), secrets, alerts)
	rep.simStats = w.sim.Stats()
	rep.pendingLost, rep.stripeRefused = w.stripe.PendingFaults(), w.refused.Load()
	for _, r := range w.stripe.Requests() {
		rep.stripeRequests++
		if r.Dropped {
			rep.stripeDropped++
		}
	}
	return nil
}
