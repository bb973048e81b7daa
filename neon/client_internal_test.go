package neon

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":          0,
		"0":         0,
		"-3":        0,
		"7":         7 * time.Second,
		" 2 ":       2 * time.Second,
		"999999999": 24 * time.Hour, // clamped
		"soon":      0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClient_Backoff(t *testing.T) {
	c := &Client{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}}
	for attempt := range 12 {
		ceil := min(100*time.Millisecond<<attempt, 2*time.Second)
		for range 200 {
			d := c.backoff(attempt, 0)
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("attempt %d: %v outside [100ms, %v]", attempt, d, ceil)
			}
		}
	}
	// Retry-After raises the wait, up to MaxBackoff.
	if d := c.backoff(0, 1500*time.Millisecond); d != 1500*time.Millisecond {
		t.Errorf("Retry-After 1.5s: waited %v", d)
	}
	if d := c.backoff(0, time.Hour); d != 2*time.Second {
		t.Errorf("Retry-After 1h: waited %v, want MaxBackoff", d)
	}
	// Jitter: not every wait is the same.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[c.backoff(5, 0)] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct waits: no jitter", len(seen))
	}
}

func TestBucket_Reserve(t *testing.T) {
	b := newBucket("test", 60, 2) // one token a second (less the pacing margin), two at most
	t0 := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	margin := paceMargin
	sec := time.Duration(float64(time.Second) / margin)
	near := func(got, want time.Duration) bool { return got-want < time.Microsecond && want-got < time.Microsecond }
	steps := []struct {
		at   time.Duration
		want time.Duration
	}{
		{0, 0}, {0, 0}, // the burst
		{0, sec}, {0, 2 * sec}, // queued behind each other
		{10 * time.Second, 0}, // refilled (the two queued tokens were paid back first)
		{10 * time.Second, 0},
		{10 * time.Second, sec},
	}
	for i, s := range steps {
		if got := b.reserve(t0.Add(s.at)); !near(got, s.want) {
			t.Fatalf("step %d: wait %v, want %v", i, got, s.want)
		}
	}
	b.cancel() // an abandoned wait gives its token back
	if got := b.reserve(t0.Add(10 * time.Second)); !near(got, sec) {
		t.Fatalf("after cancel: wait %v, want %v", got, sec)
	}
}

func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if len(id) != 36 || id[14] != '4' || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
