package neon

import (
	"context"
	"errors"
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

// TestClient_Backoff checks the client's numbering against internal/retry: retry n (1 for the
// first) waits within [MinBackoff, MinBackoff·2^(n−1)] capped at MaxBackoff, and Retry-After
// raises the wait up to MaxBackoff.
func TestClient_Backoff(t *testing.T) {
	c := &Client{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}}
	for n := 1; n <= 12; n++ {
		ceil := min(100*time.Millisecond<<(n-1), 2*time.Second)
		for range 200 {
			d := c.backoff(n, 0)
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("retry %d: %v outside [100ms, %v]", n, d, ceil)
			}
		}
	}
	// Retry-After raises the wait, up to MaxBackoff.
	if d := c.backoff(1, 1500*time.Millisecond); d != 1500*time.Millisecond {
		t.Errorf("Retry-After 1.5s: waited %v", d)
	}
	if d := c.backoff(1, time.Hour); d != 2*time.Second {
		t.Errorf("Retry-After 1h: waited %v, want MaxBackoff", d)
	}
	// Jitter: not every wait is the same.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[c.backoff(6, 0)] = true
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
	reserve := func(at time.Time) (time.Duration, func()) {
		r := b.lim.ReserveN(at, 1)
		return r.DelayFrom(at), func() { r.CancelAt(at) }
	}
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
	var cancel func()
	for i, s := range steps {
		var got time.Duration
		if got, cancel = reserve(t0.Add(s.at)); !near(got, s.want) {
			t.Fatalf("step %d: wait %v, want %v", i, got, s.want)
		}
	}
	cancel() // an abandoned wait gives its token back
	if got, _ := reserve(t0.Add(10 * time.Second)); !near(got, sec) {
		t.Fatalf("after cancel: wait %v, want %v", got, sec)
	}
}

// TestBucket_WaitReportsAndReturnsTokens: wait reports the time it waited (the throttle metric),
// none when a token was there, and a wait ended by ctx returns its token.
func TestBucket_WaitReportsAndReturnsTokens(t *testing.T) {
	b := newBucket("test", 6000, 1) // a token every ~10 ms
	ctx := context.Background()
	if d, err := b.wait(ctx); d != 0 || err != nil {
		t.Fatalf("first wait: %v, %v; want none (the burst)", d, err)
	}
	if d, err := b.wait(ctx); d <= 0 || err != nil {
		t.Fatalf("second wait: %v, %v; want a positive wait", d, err)
	}
	slow := newBucket("test", 1, 1) // a token a minute
	_, _ = slow.wait(ctx)
	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	if d, err := slow.wait(short); d != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("throttled wait: %v, %v; want DeadlineExceeded", d, err)
	}
	// Only the first caller's token is spent: the cancelled one came back.
	if tokens := slow.lim.Tokens(); tokens < -0.01 {
		t.Fatalf("%.3f tokens after a cancelled wait, want about 0", tokens)
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
