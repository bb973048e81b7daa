package main

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/internal/simclock"
)

// On a simulated clock serve's schedule fires when the clock reads the schedule's times: an
// hourly schedule at one simulated hour per 2 s of real time fires every 2 s, and the clock
// reads at least the scheduled time at each firing, so the next firing is the next hour.
func TestOnClock_FiresOnSimulatedTime(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC)
	anchor := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	sc, err := simclock.New(start, anchor, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hourly, err := cron.ParseStandard("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	s := Config{SimClock: sc.String()}.onClock(hourly)
	at := anchor
	for i := range 3 {
		next := s.Next(at)
		want := time.Date(2026, 11, 1, 1+i, 0, 0, 0, time.UTC)
		if got := sc.At(next); got.Before(want) || got.After(want.Add(time.Millisecond)) {
			t.Fatalf("firing %d: the clock reads %s, want %s", i, got, want)
		}
		if i > 0 && next.Sub(at) < 2*time.Second-time.Millisecond {
			t.Fatalf("firing %d came %s after the previous, want 2s", i, next.Sub(at))
		}
		at = next
	}
	if got := (Config{}).onClock(hourly); got != hourly {
		t.Errorf("on the wall clock the schedule must be unchanged, got %T", got)
	}
}
