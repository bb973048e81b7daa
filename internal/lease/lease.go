// Package lease keeps one writer per job (billing, enforcement, accounts, retention): a process
// takes the job's lease before it acts, renews it while it works and gives it back when done. A
// lease whose holder stops renewing (killed, paused, cut off) expires after its TTL, and the
// holder then fails Check before any further side effect: the fence that keeps a paused writer
// from sending a stale value after another one took over.
//
// Leases are numbered by generation: taking a lease creates the job's next generation, and
// storage decides atomically that only one contender creates a given generation. Backend is
// that storage: lease/chstore keeps it on one ClickHouse server (creating a table that exists
// fails), lease/zkstore in ZooKeeper or ClickHouse Keeper for a cluster (a conditional write on
// a znode's version).
package lease

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// TTL bounds: expiry is judged in whole seconds of the server's clock, so a TTL must be a few
// seconds at least; beyond an hour a dead holder would block its job too long.
const (
	MinTTL     = 2 * time.Second
	MaxTTL     = time.Hour
	DefaultTTL = time.Minute
)

// ErrLost is what a lease's checks return (wrapped in a *LostError) once the holder may no
// longer act: it expired without renewal, a newer generation exists, or it was released.
var ErrLost = errors.New("lease lost")

// Holder names a lease's holder in errors and in storage.
type Holder struct {
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	RunID string `json:"run_id"`
}

func (h Holder) String() string {
	host := h.Host
	if host == "" {
		host = "unknown host"
	}
	return fmt.Sprintf("%s (pid %d, run %s)", host, h.PID, h.RunID)
}

// Grant is a generation won by TryAcquire.
type Grant struct {
	Generation uint64
}

// HeldError says the lease is held by someone else: who, since when, and until when it stays
// held unless renewed (times of the backend's clock).
type HeldError struct {
	Job     string
	Holder  Holder
	Since   time.Time
	Expires time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease %q is held by %s since %s; it expires at %s unless renewed", e.Job, e.Holder,
		e.Since.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339))
}

// LostError says a holder lost its lease and why. errors.Is(err, ErrLost) holds.
type LostError struct {
	Job        string
	Generation uint64
	Reason     string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lease %q generation %d lost: %s", e.Job, e.Generation, e.Reason)
}

func (e *LostError) Is(target error) bool { return target == ErrLost }

var jobPattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,39}$`)

// ValidJob reports whether job can name a lease: lower-case letters and digits (it becomes
// part of storage names, and no underscore keeps "<job>_<generation>" unambiguous).
func ValidJob(job string) bool { return jobPattern.MatchString(job) }

// CheckTTL returns an error when ttl is outside [MinTTL, MaxTTL].
func CheckTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("lease TTL must be between %s and %s, got %s", MinTTL, MaxTTL, ttl)
	}
	return nil
}
