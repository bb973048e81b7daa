package testclock_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/testclock"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 12, 40, 0, 0, time.UTC)
	c := testclock.New(t0)
	c.Add(time.Hour)
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after Add: %v", got)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("after Set: %v", got)
	}
}
