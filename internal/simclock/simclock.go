// Package simclock is the accelerated clock the Neon simulator and neonmeter share in fleet
// benchmarks: simulated time runs from a start instant, anchored at a real instant, at one
// simulated hour per Hour of real time. Two processes given the same spec read the same
// simulated time at the same real time, so a simulated day can run in minutes with every
// process on the same schedule.
//
// A spec is one line of comma-separated key=value parts, in any order:
//
//	start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=5s
//
// start is the simulated time at the anchor, anchor the real time it maps to (both RFC 3339,
// fractions of a second allowed), hour the real duration of one simulated hour (a Go duration;
// 1h is real time).
package simclock

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Clock maps real time to simulated time. The zero value is not usable; build one with New or
// Parse. A Clock is immutable and safe for concurrent use.
type Clock struct {
	start  time.Time     // simulated time at anchor
	anchor time.Time     // real time
	hour   time.Duration // real duration of one simulated hour
}

// MinHour is the shortest real duration of a simulated hour: below it a simulated second is
// shorter than a real microsecond and timers stop meaning anything.
const MinHour = 10 * time.Millisecond

// New returns the clock reading start at the real instant anchor and advancing one simulated
// hour per hour of real time.
func New(start, anchor time.Time, hour time.Duration) (Clock, error) {
	if start.IsZero() || anchor.IsZero() {
		return Clock{}, errors.New("simclock: start and anchor must be set")
	}
	if hour < MinHour {
		return Clock{}, fmt.Errorf("simclock: hour=%v: must be at least %v of real time", hour, MinHour)
	}
	return Clock{start: start.UTC(), anchor: anchor.UTC(), hour: hour}, nil
}

// Parse reads a spec (see the package comment). Every error names the part at fault.
func Parse(spec string) (Clock, error) {
	var (
		start, anchor time.Time
		hour          time.Duration
		seen          = map[string]bool{}
		errs          []error
	)
	if strings.TrimSpace(spec) == "" {
		return Clock{}, errors.New("simclock: empty spec; want start=<RFC 3339>,anchor=<RFC 3339>,hour=<duration>")
	}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		key, val, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%q: not key=value", part))
			continue
		case seen[key]:
			errs = append(errs, fmt.Errorf("%s: given twice", key))
			continue
		}
		seen[key] = true
		var err error
		switch key {
		case "start":
			start, err = time.Parse(time.RFC3339Nano, val)
		case "anchor":
			anchor, err = time.Parse(time.RFC3339Nano, val)
		case "hour":
			hour, err = time.ParseDuration(val)
			if err == nil && hour < MinHour {
				err = fmt.Errorf("must be at least %v of real time", MinHour)
			}
		default:
			err = errors.New("unknown part; want start, anchor and hour")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %w", key, val, err))
		}
	}
	for _, key := range []string{"start", "anchor", "hour"} {
		if !seen[key] {
			errs = append(errs, fmt.Errorf("%s: missing", key))
		}
	}
	if len(errs) > 0 {
		return Clock{}, fmt.Errorf("simclock: spec %q: %w", spec, errors.Join(errs...))
	}
	return New(start, anchor, hour)
}

// String is the clock's spec; Parse reads it back to an equal clock.
func (c Clock) String() string {
	return "start=" + c.start.Format(time.RFC3339Nano) + ",anchor=" + c.anchor.Format(time.RFC3339Nano) + ",hour=" + c.hour.String()
}

// Start is the simulated time at the anchor.
func (c Clock) Start() time.Time { return c.start }

// Anchor is the real time the start maps to.
func (c Clock) Anchor() time.Time { return c.anchor }

// Hour is the real duration of one simulated hour.
func (c Clock) Hour() time.Duration { return c.hour }

// Speed is how many simulated seconds pass per real second.
func (c Clock) Speed() float64 { return float64(time.Hour) / float64(c.hour) }

// Now is the simulated time now; pass c.Now where a func() time.Time is wanted.
func (c Clock) Now() time.Time { return c.At(time.Now()) }

// At is the simulated time at the real instant t.
func (c Clock) At(t time.Time) time.Time {
	return c.start.Add(scale(t.Sub(c.anchor), time.Hour, c.hour))
}

// RealAt is the real instant at which the clock reads the simulated time t.
func (c Clock) RealAt(t time.Time) time.Time {
	return c.anchor.Add(scale(t.Sub(c.start), c.hour, time.Hour))
}

// Real is the real duration of the simulated duration d.
func (c Clock) Real(d time.Duration) time.Duration { return scale(d, c.hour, time.Hour) }

// Simulated is the simulated duration of the real duration d.
func (c Clock) Simulated(d time.Duration) time.Duration { return scale(d, time.Hour, c.hour) }

// scale returns d·num/den exactly (rounded toward zero) for positive num and den, saturating
// at the limits of time.Duration instead of overflowing.
func scale(d, num, den time.Duration) time.Duration {
	neg := d < 0
	mag := uint64(d)
	if neg {
		mag = -mag
	}
	hi, lo := bits.Mul64(mag, uint64(num))
	if hi >= uint64(den) {
		if neg {
			return time.Duration(-1 << 63)
		}
		return time.Duration(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, uint64(den))
	if q > 1<<63-1 {
		q = 1<<63 - 1
	}
	if neg {
		return -time.Duration(q)
	}
	return time.Duration(q)
}
