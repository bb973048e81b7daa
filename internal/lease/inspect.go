package lease

import (
	"context"
	"time"
)

// The kinds of history events.
const (
	EventAcquired = "acquired"
	EventReleased = "released"
)

// Event is one entry of a job's lease history: an acquisition or a release, stamped with the
// backend's clock.
type Event struct {
	At         time.Time
	Generation uint64
	// Kind is EventAcquired or EventReleased.
	Kind   string
	Holder Holder
	TTL    time.Duration
	// Superseded describes, for an acquisition, the generation it replaced and why that one
	// was free (released or expired); "" for the first.
	Superseded string
	// PreviousEnd is, for an acquisition, when the generation it replaced stopped being held
	// by the backend's clock: its release, or its last heartbeat plus its TTL. Zero when
	// unknown (the ClickHouse backend keeps only Superseded) or for the first generation.
	PreviousEnd time.Time
}

// Status is what a backend says of a job's lease now.
type Status struct {
	Job string
	// Generation is the current generation; 0 when the lease was never taken.
	Generation uint64
	Holder     Holder
	Since      time.Time // when the current generation was taken
	// LastHeartbeat is the holder's last renewal (or the acquisition), by the backend's clock.
	LastHeartbeat time.Time
	Expires       time.Time // when it is free unless renewed
	Released      bool
	// Free says another contender may take the lease now: never taken, released or expired.
	Free bool
	Now  time.Time // the backend's clock when it answered
}

// Inspector is implemented by backends that can say who holds a job's lease and who held it
// before (neonmeter leases, and the tests that check no two holders overlapped).
type Inspector interface {
	Status(ctx context.Context, job string) (Status, error)
	// Events returns job's newest limit events, newest first.
	Events(ctx context.Context, job string, limit int) ([]Event, error)
}
