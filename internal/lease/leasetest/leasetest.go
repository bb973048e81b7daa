// Package leasetest plays a lease holder that cannot renew, over a real backend: one paused in
// the middle of a renewal (a stopped process, a long GC pause), one cut off from storage, or one
// whose storage judges the lease by a shorter TTL (a backend clock running fast). It also gives
// tests a ZooKeeper root of their own (zookeeper.go).
package leasetest

import (
	"context"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/internal/lease"
)

// Backend passes everything to the backend it wraps, except renewals when told otherwise.
type Backend struct {
	lease.Backend
	mu         sync.Mutex
	cutOff     error
	paused     chan struct{}
	storageTTL time.Duration
}

// Wrap returns b with renewals under the test's control.
func Wrap(b lease.Backend) *Backend { return &Backend{Backend: b} }

// Pause makes renewals wait until Resume before they reach the backend.
func (b *Backend) Pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused == nil {
		b.paused = make(chan struct{})
	}
}

// Resume lets paused renewals go on to the backend.
func (b *Backend) Resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused != nil {
		close(b.paused)
		b.paused = nil
	}
}

// CutOff makes renewals fail with err without reaching the backend; nil restores them.
func (b *Backend) CutOff(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cutOff = err
}

// StorageTTL makes acquisitions and renewals store ttl instead of the holder's own TTL: the
// backend then frees the lease sooner than the holder expects, as when its clock runs faster
// than the holder's. Zero restores the holder's own.
func (b *Backend) StorageTTL(ttl time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.storageTTL = ttl
}

func (b *Backend) ttl(own time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.storageTTL > 0 {
		return b.storageTTL
	}
	return own
}

// TryAcquire implements lease.Backend.
func (b *Backend) TryAcquire(ctx context.Context, job string, h lease.Holder, ttl time.Duration) (lease.Grant, error) {
	return b.Backend.TryAcquire(ctx, job, h, b.ttl(ttl))
}

// Renew implements lease.Backend.
func (b *Backend) Renew(ctx context.Context, job string, gen uint64, h lease.Holder, ttl time.Duration) error {
	ttl = b.ttl(ttl)
	b.mu.Lock()
	paused, cutOff := b.paused, b.cutOff
	b.mu.Unlock()
	if paused != nil {
		select {
		case <-paused:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if cutOff != nil {
		return cutOff
	}
	return b.Backend.Renew(ctx, job, gen, h, ttl)
}
