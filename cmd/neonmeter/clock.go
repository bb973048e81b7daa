package main

import (
	"time"

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
