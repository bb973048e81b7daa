// Package retry computes the wait before another attempt: exponential backoff with jitter,
// the one implementation every outbound client (Neon, Stripe) uses.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff waits a random time in [Min, cap] before attempt n (1 for the first retry), where cap
// doubles from Min per attempt up to Max. The jitter spreads workers that failed together; the
// floor of Min keeps a retry from landing at once on a server that just refused.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before attempt n.
func (b Backoff) Delay(n int) time.Duration {
	lo, hi := max(b.Min, 0), max(b.Max, b.Min, 0)
	ceil := lo
	for i := 1; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	d := lo
	if ceil > lo {
		d += rand.N(ceil - lo + 1)
	}
	return d
}

// DelayAfter is Delay raised to a server's Retry-After hint, but never beyond Max: the caller's
// budget wins over a hint (and a bogus hint cannot stall a run).
func (b Backoff) DelayAfter(n int, retryAfter time.Duration) time.Duration {
	d := b.Delay(n)
	if retryAfter > d {
		d = min(retryAfter, max(b.Max, b.Min))
	}
	return d
}

// Sleep waits d or until ctx ends, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
