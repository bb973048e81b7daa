package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/retry"
)

func TestBackoff_DelayStaysInItsBand(t *testing.T) {
	b := retry.Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n, ceil := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 9: 80, 64: 80} {
		for range 200 {
			d := b.Delay(n)
			if d < b.Min || d > ceil*time.Millisecond {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, b.Min, ceil*time.Millisecond)
			}
		}
	}
}

func TestBackoff_DelayJitters(t *testing.T) {
	b := retry.Backoff{Min: time.Millisecond, Max: time.Second}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[b.Delay(8)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 delays took only %d values: no jitter", len(seen))
	}
}

func TestBackoff_RetryAfterRaisesButNeverPastMax(t *testing.T) {
	b := retry.Backoff{Min: time.Millisecond, Max: time.Second}
	if d := b.DelayAfter(1, 500*time.Millisecond); d != 500*time.Millisecond {
		t.Errorf("Retry-After 500ms: got %v", d)
	}
	if d := b.DelayAfter(1, time.Hour); d != time.Second {
		t.Errorf("Retry-After 1h: got %v, want the 1s maximum", d)
	}
}

func TestBackoff_ZeroValueDoesNotWait(t *testing.T) {
	if d := (retry.Backoff{}).Delay(5); d != 0 {
		t.Fatalf("zero Backoff: got %v", d)
	}
}

func TestSleep_EndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retry.Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := retry.Sleep(context.Background(), 0); err != nil {
		t.Fatalf("zero sleep: %v", err)
	}
}
