package neon

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// bucket is one client-side token bucket (golang.org/x/time/rate) with the name its wait time
// is reported under. The limiter starts full (burst tokens) and lets waiters take tokens ahead,
// so concurrent callers are served in arrival order.
type bucket struct {
	name string // metric label: "consumption" or "general"
	lim  *rate.Limiter
}

// paceMargin slows the bucket 1 % below its configured rate. Configured at Neon's own limit, a
// bucket pacing exactly at that rate lands some requests a hair early after network jitter,
// and each such 429 costs a backoff far longer than the margin.
const paceMargin = 0.99

func newBucket(name string, perMinute float64, burst int) *bucket {
	return &bucket{name: name, lim: rate.NewLimiter(rate.Limit(perMinute/60*paceMargin), burst)}
}

// wait blocks until a token is available or ctx ends; it returns the time spent waiting, which
// feeds the throttle metric and Stats. It reserves and sleeps itself rather than calling
// Limiter.Wait, which does not say how long it waited and fails at once, with an error that is
// not ctx's, when the wait would pass ctx's deadline; callers match context errors. A wait
// that ctx ends cancels the reservation, so the token goes back to the others.
func (b *bucket) wait(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := b.lim.Reserve()
	d := r.Delay()
	if d <= 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		r.Cancel()
		return 0, ctx.Err()
	}
}
