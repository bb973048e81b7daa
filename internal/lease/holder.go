package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/retry"
)

// Backend stores leases. Each method is one round trip to storage; the holder's rules (when to
// renew, and fencing by the local monotonic clock) live in Lease, so every backend gets them.
type Backend interface {
	// TryAcquire makes one attempt to create job's next generation for h. It fails with a
	// *HeldError when the current generation is neither released nor expired by the backend's
	// clock, or when another contender created the next generation first.
	TryAcquire(ctx context.Context, job string, h Holder, ttl time.Duration) (Grant, error)
	// Renew records a heartbeat of generation gen, then confirms it as Confirm does.
	Renew(ctx context.Context, job string, gen uint64, h Holder, ttl time.Duration) error
	// Confirm returns a *LostError when gen is no longer job's newest generation, or is gone.
	Confirm(ctx context.Context, job string, gen uint64) error
	// Release marks gen released, so that the next contender need not wait for its expiry.
	Release(ctx context.Context, job string, gen uint64, h Holder) error
}

// Options of Acquire.
type Options struct {
	// TTL is how long the lease outlives its last renewal (default DefaultTTL).
	TTL    time.Duration
	Holder Holder
	// Wait polls until the lease is free or ctx ends, instead of failing with a *HeldError.
	Wait bool
	// PollEvery is the pause between attempts when waiting (default TTL/10, within 0.5–5 s).
	PollEvery time.Duration
	Logger    *slog.Logger
}

// Lease is a held lease. Its renewal runs in the background until Release.
type Lease struct {
	b      Backend
	job    string
	gen    uint64
	holder Holder
	ttl    time.Duration
	// margin is how long before the backend could hand the lease to someone else the holder
	// stops acting: room for a request that passed Check to land.
	margin time.Duration
	// confirmEvery spaces the checks against the backend that Check makes.
	confirmEvery time.Duration
	log          *slog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc // ends the renewal loop
	done   chan struct{}      // closed when the renewal loop ended

	mu sync.Mutex
	// validUntil is, on the monotonic clock, when the holder must stop acting unless renewed.
	validUntil  time.Time
	lastConfirm time.Time
	lost        error
}

func (o *Options) fill() {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.PollEvery <= 0 {
		o.PollEvery = min(max(o.TTL/10, 500*time.Millisecond), 5*time.Second)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Acquire takes job's lease, or fails with a *HeldError naming the holder (unless o.Wait).
// The lease's Context is derived from ctx and is cancelled, with the *LostError as its cause,
// when the lease is lost or released.
func Acquire(ctx context.Context, b Backend, job string, o Options) (*Lease, error) {
	if !ValidJob(job) {
		return nil, fmt.Errorf("lease: job name %q: must be lower-case letters and digits", job)
	}
	o.fill()
	if err := CheckTTL(o.TTL); err != nil {
		return nil, err
	}
	var last *HeldError // while waiting: whom for, named when the wait ends without the lease
	for {
		start := time.Now() // before the request: the backend's heartbeat is no earlier
		g, err := b.TryAcquire(ctx, job, o.Holder, o.TTL)
		if err == nil {
			return hold(ctx, b, job, g.Generation, start, o), nil
		}
		var held *HeldError
		if !o.Wait || !errors.As(err, &held) {
			if last != nil && ctx.Err() != nil { // the wait ended inside a request
				return nil, fmt.Errorf("waiting for %w: %w", last, context.Cause(ctx))
			}
			return nil, err
		}
		if last == nil || held.Holder != last.Holder {
			o.Logger.Info("waiting for the lease", logkey.Job, job, "holder", held.Holder.String(), "expires", held.Expires)
		}
		last = held
		if err := retry.Sleep(ctx, o.PollEvery); err != nil {
			return nil, fmt.Errorf("waiting for %w: %w", held, err)
		}
	}
}

// hold builds the held lease and starts its renewal.
func hold(parent context.Context, b Backend, job string, gen uint64, start time.Time, o Options) *Lease {
	l := &Lease{b: b, job: job, gen: gen, holder: o.Holder, ttl: o.TTL, margin: o.TTL / 5,
		confirmEvery: min(5*time.Second, o.TTL/3), done: make(chan struct{}),
		log: o.Logger.With(logkey.Job, job, logkey.Generation, gen)}
	l.ctx, l.cancel = context.WithCancelCause(parent)
	l.validUntil, l.lastConfirm = start.Add(l.ttl-l.margin), start
	// Renewal goes on while the work winds down after its context was cancelled.
	loopCtx, stop := context.WithCancel(context.WithoutCancel(parent))
	l.stop = stop
	go l.renewLoop(loopCtx, o.TTL/3)
	l.log.Debug("lease acquired", "holder", o.Holder.String(), "ttl", o.TTL)
	return l
}

// Job returns the lease's job.
func (l *Lease) Job() string { return l.job }

// Generation returns the generation held.
func (l *Lease) Generation() uint64 { return l.gen }

// Context is cancelled, with the *LostError as cause, once the lease is lost or released.
func (l *Lease) Context() context.Context { return l.ctx }

// Err returns why the lease was lost (or that it was released); nil while held.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Check returns nil while the holder may act, and a *LostError (errors.Is ErrLost) from the
// moment it may not: when the last successful renewal started more than TTL minus a margin
// ago (by the monotonic clock, so a pause of the process counts), or when the backend, asked
// at most every few seconds, knows a newer generation. A loss is final.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	now := time.Now()
	if !now.Before(l.validUntil) {
		return l.loseLocked(l.expiredReason(now))
	}
	if now.Sub(l.lastConfirm) < l.confirmEvery {
		return nil
	}
	err := l.b.Confirm(ctx, l.job, l.gen)
	var lost *LostError
	if errors.As(err, &lost) {
		return l.loseLocked(lost)
	}
	if err != nil {
		// The local clock still vouches for the lease; the next Check asks again.
		l.log.Warn("lease not confirmed", logkey.Err, err)
	}
	l.lastConfirm = now
	if now = time.Now(); !now.Before(l.validUntil) { // the confirmation itself may have stalled
		return l.loseLocked(l.expiredReason(now))
	}
	return nil
}

func (l *Lease) expiredReason(now time.Time) *LostError {
	return &LostError{Job: l.job, Generation: l.gen, Reason: fmt.Sprintf("not renewed for %s (TTL %s less a %s margin; the holder was paused or cut off)",
		now.Sub(l.validUntil.Add(-(l.ttl - l.margin))).Round(time.Millisecond), l.ttl, l.margin)}
}

// loseLocked records the loss once, cancels the lease's context and returns the loss.
func (l *Lease) loseLocked(err *LostError) error {
	if l.lost != nil {
		return l.lost
	}
	l.lost = err
	l.cancel(err)
	l.log.Error("lease lost: stopping before any further side effect", logkey.Err, err)
	return err
}

func (l *Lease) renewLoop(ctx context.Context, every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.renew(ctx) != nil {
			return
		}
	}
}

// renew records one heartbeat. It extends the lease only if the heartbeat was confirmed
// before the lease ran out: a holder that resumes after a pause must not revive a lease the
// backend may already have handed on.
func (l *Lease) renew(ctx context.Context) error {
	start := time.Now()
	if err := l.Err(); err != nil {
		return err
	}
	err := l.b.Renew(ctx, l.job, l.gen, l.holder, l.ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost *LostError
	switch now := time.Now(); {
	case l.lost != nil:
		return l.lost
	case !now.Before(l.validUntil):
		return l.loseLocked(l.expiredReason(now))
	case errors.As(err, &lost):
		return l.loseLocked(lost)
	case err != nil:
		if ctx.Err() == nil {
			l.log.Warn("lease renewal failed; retrying", logkey.Err, err, "valid_for", l.validUntil.Sub(now).Round(time.Millisecond))
		}
		return nil
	}
	l.validUntil, l.lastConfirm = start.Add(l.ttl-l.margin), start
	return nil
}

// Release stops the renewal and, unless the lease was already lost, marks it released so that
// the next contender need not wait for it to expire. Check fails from then on.
func (l *Lease) Release(ctx context.Context) error {
	l.stop()
	<-l.done
	l.mu.Lock()
	wasLost := l.lost != nil
	if !wasLost {
		l.lost = &LostError{Job: l.job, Generation: l.gen, Reason: "released"}
		l.cancel(l.lost)
	}
	l.mu.Unlock()
	if wasLost {
		return nil // someone else may hold it now: nothing of ours to give back
	}
	if err := l.b.Release(ctx, l.job, l.gen, l.holder); err != nil {
		return fmt.Errorf("release lease %q generation %d (it expires by itself after %s): %w", l.job, l.gen, l.ttl, err)
	}
	l.log.Debug("lease released")
	return nil
}
