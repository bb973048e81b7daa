package neon

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket: it holds at most burst tokens and refills at rate per second. Waiters
// take a token at once, possibly driving the balance negative: the deficit is their place in the
// queue, so waits are served in arrival order without a goroutine per waiter.
type bucket struct {
	name  string  // metric label: "consumption" or "general"
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// paceMargin slows the bucket 1 % below its configured rate. Configured at Neon's own limit, a
// bucket pacing exactly at that rate lands some requests a hair early after network jitter,
// and each such 429 costs a backoff far longer than the margin.
const paceMargin = 0.99

func newBucket(name string, perMinute float64, burst int) *bucket {
	return &bucket{name: name, rate: perMinute / 60 * paceMargin, burst: float64(burst), tokens: float64(burst)}
}

// reserve takes a token and returns how long the caller must wait before using it.
func (b *bucket) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// cancel returns a token whose wait was abandoned, so a cancelled caller does not slow the others.
func (b *bucket) cancel() {
	b.mu.Lock()
	b.tokens++
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.mu.Unlock()
}

// wait blocks until a token is available or ctx ends; it returns the time spent waiting.
func (b *bucket) wait(ctx context.Context) (time.Duration, error) {
	d := b.reserve(time.Now())
	if d <= 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		b.cancel()
		return 0, ctx.Err()
	}
}
