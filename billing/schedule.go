package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/plans"
)

// Schedule is a cron schedule (robfig/cron's Schedule satisfies it).
type Schedule interface {
	Next(time.Time) time.Time
}

// ReconcileSchedule says when serve reconciles: nightly, over the month to date, and once in
// the last Lead before each period's invoice grace ends, over that period, so a drift is found
// while Stripe can still take a repair.
type ReconcileSchedule struct {
	Nightly Schedule
	// Lead must be at least serve's cycle interval, so some cycle falls inside it.
	Lead time.Duration
}

// DueReconcile is a reconciliation a scheduled step must run now, over [From, To).
type DueReconcile struct {
	Trigger  ReconcileTrigger
	From, To time.Time
}

// DueReconciles decides which reconciliations are due at now, from when the last finished one
// of each trigger started (absent: never). The pre-grace run is due once per period in
// [end + grace − Lead, end + grace), the nightly one when the schedule fired since the last.
func DueReconciles(now time.Time, last map[ReconcileTrigger]time.Time, s ReconcileSchedule, grace time.Duration) []DueReconcile {
	now = now.UTC()
	var out []DueReconcile
	end := plans.PeriodStart(now) // the end of the period that closed last
	open := end.Add(grace - s.Lead)
	if open.Before(end) {
		open = end
	}
	if !now.Before(open) && now.Before(end.Add(grace)) && last[TriggerGrace].Before(open) {
		out = append(out, DueReconcile{Trigger: TriggerGrace, From: plans.PeriodStart(end.Add(-time.Hour)), To: end})
	}
	if l, ok := last[TriggerSchedule]; !ok || !s.Nightly.Next(l).After(now) {
		out = append(out, DueReconcile{Trigger: TriggerSchedule, From: plans.PeriodStart(now.Add(-24 * time.Hour)), To: now})
	}
	return out
}

// ReconcileScheduled is serve's reconciliation step: it runs the reconciliations due (recorded
// and exported as they finish); when none is due it exports the newest recorded one, so the
// drift gauges follow a command-line run or a restart too.
func (p *Pusher) ReconcileScheduled(ctx context.Context, s ReconcileSchedule) ([]ReconcileResult, error) {
	last, err := p.cfg.Store.LastReconciles(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile schedule: %w", err)
	}
	due := DueReconciles(p.cfg.Now(), last, s, p.cfg.Grace)
	if len(due) == 0 {
		return nil, p.ExportLastReconcile(ctx)
	}
	var out []ReconcileResult
	var errs []error
	for _, d := range due {
		res, err := p.reconcileAs(ctx, d.Trigger, d.From, d.To, false)
		out = append(out, res)
		errs = append(errs, err)
		p.log.Info("billing reconcile", "trigger", d.Trigger, "run_id", res.RunID, "from", res.From, "to", res.To,
			"compared", res.Compared, "drifting", len(res.Drift), "unsettled", res.Unsettled)
	}
	return out, errors.Join(errs...)
}

// ExportLastReconcile sets the drift gauges from the newest recorded reconciliation, whoever ran
// it; it leaves them unset when none was ever recorded.
func (p *Pusher) ExportLastReconcile(ctx context.Context) error {
	if p.cfg.Metrics == nil {
		return nil
	}
	run, drift, ok, err := p.cfg.Store.LatestReconcile(ctx)
	if err != nil || !ok {
		return err
	}
	p.cfg.Metrics.setDrift(p.catalogTargets(), drift, run.StartedAt)
	return nil
}

// recordRun stores the run (failed or not) and, when it finished, exports its drift. It writes
// even after ctx ended: the record says what the run found.
func (c *cycle) recordRun(ctx context.Context, res ReconcileResult, repair bool, runErr error) error {
	drift := driftByTarget(res.Drift)
	run := ReconcileRun{RunID: res.RunID, Trigger: res.Trigger, StartedAt: c.now, FinishedAt: c.p.cfg.Now().UTC(), From: res.From, To: res.To,
		Compared: uint32(res.Compared), Drifting: uint32(len(res.Drift)), Unsettled: uint32(res.Unsettled), Repair: repair}
	for _, d := range drift {
		run.DriftUnits += d.Units
	}
	if runErr != nil {
		run.Error = runErr.Error()
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.p.cfg.Metrics.countReconcile(res.Trigger, runErr)
	if err := c.p.cfg.Store.InsertReconcileRun(wctx, run); err != nil {
		return fmt.Errorf("record reconcile %s: %w", res.RunID, err)
	}
	if runErr == nil {
		c.p.cfg.Metrics.setDrift(c.p.catalogTargets(), drift, run.StartedAt)
	}
	return nil
}

// driftByTarget sums drifting buckets per (sink, target), sorted.
func driftByTarget(drift []Bucket) []TargetDrift {
	by := map[TargetDrift]*TargetDrift{}
	var out []TargetDrift
	for _, b := range drift {
		k := TargetDrift{Sink: b.Sink, Target: b.Target}
		if by[k] == nil {
			by[k] = &TargetDrift{Sink: b.Sink, Target: b.Target}
		}
		by[k].Values++
		by[k].Units += absFloat(b.Drift())
	}
	for _, d := range by {
		out = append(out, *d)
	}
	sortTargets(out)
	return out
}

// catalogTargets lists every (sink, target) some plan bills, with no drift.
func (p *Pusher) catalogTargets() []TargetDrift {
	seen := map[TargetDrift]bool{}
	var out []TargetDrift
	for _, pl := range p.cfg.Catalog.Plans {
		for _, b := range pl.Billing {
			t := TargetDrift{Sink: SinkMeter, Target: b.MeterEventName}
			if b.PriceID != "" {
				t = TargetDrift{Sink: SinkUsageRecord, Target: b.PriceID}
			}
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	sortTargets(out)
	return out
}

func sortTargets(ts []TargetDrift) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Sink != ts[j].Sink {
			return ts[i].Sink < ts[j].Sink
		}
		return ts[i].Target < ts[j].Target
	})
}
