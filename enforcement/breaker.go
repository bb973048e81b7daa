package enforcement

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/plans"
)

// breaker is step 4: at most the cap of projects is newly suspended or throttled per cycle, the
// most over their limits first (Finding.Severity); the rest keep their current status. A cycle
// with more than the cap trips the breaker; with Policy.BreakerLatch a trip of an earlier cycle
// that no operator acknowledged holds every new suspension and throttle. Gone projects are not
// counted: they are not read.
func breaker(c *cycleState) {
	capN := c.pol.MaxActions
	if byPct := int(math.Ceil(c.pol.MaxPercent / 100 * float64(c.rep.Fleet))); byPct < capN {
		capN = byPct
	}
	c.rep.BreakerCap = capN
	var enforcing []*project
	for _, p := range c.projects {
		if p.v.Enforces && !p.d.Last.Gone {
			enforcing = append(enforcing, p)
		}
	}
	sort.SliceStable(enforcing, func(i, j int) bool { return moreSevere(enforcing[i].v, enforcing[j].v) })
	c.rep.Enforcing = len(enforcing)
	allowed := capN
	if c.pol.BreakerLatch && c.latch.Latched() {
		allowed = 0
		c.rep.BreakerTripped, c.rep.BreakerLatched, c.rep.BreakerTrippedAt = true, true, c.latch.At
	} else if len(enforcing) > capN {
		c.rep.BreakerTripped, c.rep.BreakerTrippedAt = true, c.now
	}
	for _, p := range enforcing[min(allowed, len(enforcing)):] {
		p.v = hold(p.d, p.v, c.pol, HeldBreaker)
	}
}

// moreSevere orders verdicts worst first: the higher severity of the worst finding, then a hard
// limit before a soft one, then project id (so the order is stable).
func moreSevere(a, b Verdict) bool {
	sa, sb := a.Worst.Severity(), b.Worst.Severity()
	if sa != sb {
		return sa > sb
	}
	if a.Worst.Kind != b.Worst.Kind {
		return a.Worst.Kind == plans.KindHard
	}
	return a.ProjectID < b.ProjectID
}

// hold keeps a project at its current status for reason.
func hold(d Desired, v Verdict, pol Policy, reason HoldReason) Verdict {
	samePeriod := d.Last.Known && d.Last.PeriodStart.Equal(d.PeriodStart)
	v.Target = target(d, heldStatus(samePeriod, statusOf(d.Last.Applied)), pol.NeverSuspend[d.ProjectID])
	v.Held, v.Enforces = reason, false
	return v
}

// latchBreaker ends step 4: a new trip is stored so that later cycles hold (Policy.BreakerLatch).
// Only a full cycle in enforce mode latches; a dry run changes nothing it would protect.
func (r *Reconciler) latchBreaker(ctx context.Context, c *cycleState) error {
	if !c.rep.BreakerTripped || c.rep.BreakerLatched || !c.pol.BreakerLatch || c.mode != ModeEnforce || c.opts.Only != nil {
		return nil
	}
	e := BreakerEvent{At: c.now, Kind: BreakerTripped, CycleID: c.rep.CycleID, Enforcing: c.rep.Enforcing, Cap: c.rep.BreakerCap,
		Version: uint64(c.now.UnixNano())}
	if err := r.cfg.Store.InsertBreakerEvent(ctx, e); err != nil {
		return fmt.Errorf("enforcement cycle %s: latch the circuit breaker: %w", c.rep.CycleID, err)
	}
	r.log.Warn("enforcement circuit breaker tripped: new suspensions and throttles held until `neonmeter enforce ack-breaker`",
		logkey.RunID, c.rep.CycleID, "enforcing", c.rep.Enforcing, "cap", c.rep.BreakerCap)
	return nil
}

// BreakerState returns the newest trip or acknowledgement of the breaker (zero when none).
func (r *Reconciler) BreakerState(ctx context.Context) (BreakerEvent, error) {
	e, err := r.cfg.Store.LastBreakerEvent(ctx)
	if err != nil {
		return BreakerEvent{}, fmt.Errorf("enforcement breaker: %w", err)
	}
	return e, nil
}

// AckBreaker acknowledges a latched breaker so that the next cycle enforces again (within the
// cap, most severe first). It returns the trip acknowledged, and ok false when the breaker did
// not hold (nothing is recorded then).
func (r *Reconciler) AckBreaker(ctx context.Context) (trip BreakerEvent, ok bool, err error) {
	trip, err = r.BreakerState(ctx)
	if err != nil || !trip.Latched() {
		return trip, false, err
	}
	now := r.cfg.Now().UTC()
	version := uint64(now.UnixNano())
	if version <= trip.Version {
		version = trip.Version + 1
	}
	ack := BreakerEvent{At: now, Kind: BreakerAcknowledged, CycleID: "ack", Enforcing: trip.Enforcing, Cap: trip.Cap, Version: version}
	if err := r.cfg.Store.InsertBreakerEvent(ctx, ack); err != nil {
		return trip, false, fmt.Errorf("enforcement breaker: acknowledge the trip of %s: %w", trip.At.Format(time.RFC3339), err)
	}
	r.log.Info("enforcement circuit breaker acknowledged", logkey.RunID, trip.CycleID, "enforcing", trip.Enforcing, "cap", trip.Cap)
	return trip, true, nil
}
