package simclock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/simclock"
)

var (
	start  = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	anchor = time.Date(2026, 12, 3, 15, 0, 0, 250_000_000, time.UTC)
)

func TestClock_MapsRealToSimulated(t *testing.T) {
	c, err := simclock.New(start, anchor, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		real time.Duration
		sim  time.Duration
	}{
		{0, 0},
		{5 * time.Second, time.Hour},
		{120 * time.Second, 24 * time.Hour},
		{time.Millisecond, 720 * time.Millisecond},
		{-10 * time.Second, -2 * time.Hour},
	} {
		if got := c.At(anchor.Add(x.real)); !got.Equal(start.Add(x.sim)) {
			t.Errorf("At(anchor%+v) = %v, want %v", x.real, got, start.Add(x.sim))
		}
		if got := c.RealAt(start.Add(x.sim)); !got.Equal(anchor.Add(x.real)) {
			t.Errorf("RealAt(start%+v) = %v, want %v", x.sim, got, anchor.Add(x.real))
		}
	}
	if got := c.Real(30 * time.Minute); got != 2500*time.Millisecond {
		t.Errorf("Real(30m) = %v, want 2.5s", got)
	}
	if got := c.Simulated(time.Second); got != 12*time.Minute {
		t.Errorf("Simulated(1s) = %v, want 12m", got)
	}
	if got := c.Speed(); got != 720 {
		t.Errorf("Speed = %v, want 720", got)
	}
	before := c.At(time.Now())
	now := c.Now()
	after := c.At(time.Now())
	if now.Before(before) || now.After(after) {
		t.Errorf("Now %v outside [%v, %v]", now, before, after)
	}
}

func TestClock_RealTimeAndLongSpans(t *testing.T) {
	c, err := simclock.New(start, anchor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.At(anchor.Add(90 * 24 * time.Hour)); !got.Equal(start.Add(90 * 24 * time.Hour)) {
		t.Errorf("real-time clock drifts: %v", got)
	}
	// A year of real time at 3,600 simulated hours per real hour saturates, not wraps.
	fast, _ := simclock.New(start, anchor, simclock.MinHour)
	if got := fast.At(anchor.Add(365 * 24 * time.Hour)); got.Before(start) {
		t.Errorf("overflow wrapped to %v", got)
	}
}

func TestParse_RoundTrip(t *testing.T) {
	spec := "start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00.25Z,hour=5s"
	c, err := simclock.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != spec {
		t.Errorf("String = %q, want %q", c.String(), spec)
	}
	if !c.Start().Equal(start) || !c.Anchor().Equal(anchor) || c.Hour() != 5*time.Second {
		t.Errorf("parsed %v %v %v", c.Start(), c.Anchor(), c.Hour())
	}
	// Order and spaces do not matter; a non-UTC offset is kept as the same instant.
	c2, err := simclock.Parse(" hour=5s , anchor=2026-12-03T16:00:00.25+01:00,start=2026-11-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c {
		t.Errorf("reordered spec gave %v, want %v", c2, c)
	}
}

func TestParse_ErrorsNameThePart(t *testing.T) {
	for spec, want := range map[string][]string{
		"": {"empty spec"},
		"start=2026-11-01,anchor=2026-12-03T15:00:00Z,hour=5s":                                      {"start=2026-11-01"},
		"start=2026-11-01T00:00:00Z,anchor=yesterday,hour=5s":                                       {"anchor=yesterday"},
		"start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=5":                             {"hour=5"},
		"start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=1ms":                           {"hour=1ms", "at least"},
		"start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=-5s":                           {"hour=-5s"},
		"start=2026-11-01T00:00:00Z,hour=5s":                                                        {"anchor: missing"},
		"start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=5s,speed=2":                    {"speed=2", "unknown part"},
		"start=2026-11-01T00:00:00Z,start=2026-11-02T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=5s": {"start: given twice"},
		"start=2026-11-01T00:00:00Z;anchor=2026-12-03T15:00:00Z,hour=5s":                            {"extra text", "anchor: missing"},
		"start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,5s":                                 {`"5s": not key=value`, "hour: missing"},
	} {
		_, err := simclock.Parse(spec)
		if err == nil {
			t.Errorf("Parse(%q) accepted", spec)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q) = %v, want it to mention %q", spec, err, w)
			}
		}
	}
}

func TestNew_Refuses(t *testing.T) {
	if _, err := simclock.New(time.Time{}, anchor, time.Second); err == nil {
		t.Error("zero start accepted")
	}
	if _, err := simclock.New(start, anchor, 0); err == nil {
		t.Error("zero hour accepted")
	}
}
