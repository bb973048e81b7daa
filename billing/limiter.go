package billing

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/neonmeter/neonmeter/internal/retry"
)

// pacer holds every request to Stripe to one global rate and lets a 429 hold back every
// worker at once.
//
// The rate is a token bucket (golang.org/x/time/rate) with a burst of one: each Wait takes the
// next slot, 1/rate after the previous one, so the achieved rate tracks the configured one
// without bursts. rate.Limiter cannot be paused, so a 429 sets a floor instead (Pause): no
// Wait takes a slot before it. Every worker that asks for a slot after the 429 first waits for
// the floor, then takes slots one by one again, paced from the floor; slots taken before the
// 429 stand, as the pause cannot recall a request already on its way.
type pacer struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	until   time.Time // no slot before this instant (the latest Pause)
}

// newPacer paces at perSecond requests per second; 0 or less means no pacing.
func newPacer(perSecond float64) *pacer {
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	return &pacer{limiter: rate.NewLimiter(limit, 1)}
}

// Wait blocks until the caller's slot, or until ctx ends.
func (p *pacer) Wait(ctx context.Context) error {
	// A pause may be extended while waiting for it: wait until no pause is ahead.
	for {
		p.mu.Lock()
		d := time.Until(p.until)
		p.mu.Unlock()
		if d <= 0 {
			break
		}
		if err := retry.Sleep(ctx, d); err != nil {
			return err
		}
	}
	return p.limiter.Wait(ctx)
}

// Pause keeps every slot taken from now on from starting before now+d. A shorter pause never
// shortens a longer one.
func (p *pacer) Pause(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.until) {
		p.until = until
	}
}
