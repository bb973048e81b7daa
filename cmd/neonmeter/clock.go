package main

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/internal/simclock"
)

// clock returns the time source of every stage and how many times faster than real time it
// runs: the wall clock, or NEONMETER_SIM_CLOCK's simulated one (Validate has checked it).
func (c Config) clock() (now func() time.Time, speed float64) {
	if c.SimClock == "" {
		return time.Now, 1
	}
	sc, err := simclock.Parse(c.SimClock)
	if err != nil {
		return time.Now, 1
	}
	return sc.Now, sc.Speed()
}

// onClock returns serve's schedule on the configured clock: on a simulated clock the cycles
// fire when the clock reads the schedule's times, so a cycle's budget (the schedule's interval
// at the configured rate) is spent over that much simulated time, as on the wall clock.
func (c Config) onClock(sched cron.Schedule) cron.Schedule {
	if c.SimClock == "" {
		return sched
	}
	sc, err := simclock.Parse(c.SimClock)
	if err != nil {
		return sched
	}
	return simSchedule{inner: sched, clock: sc}
}

// simSchedule maps a schedule of simulated times onto the real instants cron waits for.
type simSchedule struct {
	inner cron.Schedule
	clock simclock.Clock
}

// Next is the real instant at which the clock first reads the schedule's next time after the
// simulated time at t. RealAt rounds down, so a nanosecond more makes the clock read at least
// that time when cron fires (else cron would ask again and get the same time).
func (s simSchedule) Next(t time.Time) time.Time {
	return s.clock.RealAt(s.inner.Next(s.clock.At(t))).Add(time.Nanosecond)
}
