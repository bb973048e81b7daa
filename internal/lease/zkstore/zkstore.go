// Package zkstore keeps leases in ZooKeeper or ClickHouse Keeper (the coordination service a
// replicated ClickHouse already has), for neonmeter replicas sharing a cluster.
//
// Job J's lease is one persistent znode, <root>/<database>/leases/J, whose data names the
// current generation, its holder and TTL. Every change is a conditional write on the znode's
// version (or the creation of the znode), so exactly one contender wins each generation. A
// heartbeat rewrites the data: the znode's mtime, stamped by the ZooKeeper leader, is the last
// heartbeat. The lease is free once released, or once the leader's clock passes the last
// heartbeat plus the TTL; the leader's "now" is read by touching <root>/<database>/clock.
// Sessions and ephemeral nodes play no part: a killed holder whose session lingers is
// superseded after its TTL all the same, and a paused one that resumes finds a newer
// generation.
//
// Each acquisition and release is written, in the same transaction as the change itself, as a
// sequential znode under <root>/<database>/history/J: the history cannot miss or invent one.
// The newest historyKeep entries per job are kept.
package zkstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/neonmeter/neonmeter/internal/lease"
)

// clockSlack is added to a lease's expiry: the leader stamps heartbeats and "now" with its own
// clock, and a new leader's clock may differ from the old one's by a little.
const clockSlack = 500 * time.Millisecond

// acquireAttempts bounds the rounds of one call lost to other writers of the same znode.
const acquireAttempts = 3

// historyKeep is how many history entries per job survive pruning; pruneEvery spaces prunes.
const (
	historyKeep = 1000
	pruneEvery  = 50
)

// Options of Open.
type Options struct {
	// Addrs are the ensemble's host:port addresses.
	Addrs []string
	// Root is the znode under which every database keeps its leases, e.g. /neonmeter.
	Root string
	// Database is the ClickHouse database whose jobs the leases are for (it names a znode).
	Database string
	// SessionTimeout is asked of the ensemble; requests on a dead connection fail after two
	// thirds of it.
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

// Store is the ZooKeeper lease backend of one database.
type Store struct {
	conn  *zk.Conn
	base  string // <root>/<database>
	addrs string
	log   *slog.Logger
	// created remembers the paths ensure made sure of.
	created sync.Map
}

var (
	_ lease.Backend   = (*Store)(nil)
	_ lease.Inspector = (*Store)(nil)
)

var (
	rootPattern = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)
	dbPattern   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// CheckRoot returns an error unless root is an absolute znode path: "/" then names of letters,
// digits, '_', '.', '-', separated by "/", without a trailing "/".
func CheckRoot(root string) error {
	if !rootPattern.MatchString(root) || strings.Contains(root, "/./") || strings.Contains(root, "/../") ||
		strings.HasSuffix(root, "/.") || strings.HasSuffix(root, "/..") {
		return fmt.Errorf("must be an absolute znode path like /neonmeter, got %q", root)
	}
	if root == "/zookeeper" || strings.HasPrefix(root, "/zookeeper/") {
		return fmt.Errorf("%s is ZooKeeper's own tree", root)
	}
	return nil
}

// Open returns the backend. It connects in the background: a ZooKeeper that does not answer
// fails the first requests (Ping says so at once), not Open.
func Open(o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("zookeeper: no address")
	}
	if err := CheckRoot(o.Root); err != nil {
		return nil, fmt.Errorf("zookeeper root: %w", err)
	}
	if !dbPattern.MatchString(o.Database) {
		return nil, fmt.Errorf("zookeeper: database name %q", o.Database)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	conn, _, err := zk.Connect(o.Addrs, o.SessionTimeout, zk.WithLogger(zkLogger{o.Logger}), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("zookeeper %s: %w", strings.Join(o.Addrs, ","), err)
	}
	return &Store{conn: conn, base: path.Join(o.Root, o.Database), addrs: strings.Join(o.Addrs, ","), log: o.Logger}, nil
}

// Close ends the session.
func (s *Store) Close() { s.conn.Close() }

// Base returns the znode under which this database's leases and history live.
func (s *Store) Base() string { return s.base }

// Ping asks the ensemble one question: whether the root exists. Readiness uses it.
func (s *Store) Ping(ctx context.Context) error {
	_, err := call(ctx, func() (bool, error) {
		ok, _, err := s.conn.Exists(s.base)
		return ok, err
	})
	return s.wrap(err, "ping")
}

func (s *Store) leasePath(job string) string   { return s.base + "/leases/" + job }
func (s *Store) historyPath(job string) string { return s.base + "/history/" + job }
func (s *Store) clockPath() string             { return s.base + "/clock" }

// record is the data of a lease znode.
type record struct {
	Generation uint64 `json:"generation"`
	Host       string `json:"host"`
	PID        int    `json:"pid"`
	RunID      string `json:"run_id"`
	TTLMs      int64  `json:"ttl_ms"`
	// SinceMs is the acquisition's time, written by the first heartbeat; before it the
	// znode's mtime is the acquisition's time.
	SinceMs  int64 `json:"since_ms,omitempty"`
	Released bool  `json:"released,omitempty"`
}

func (r record) holder() lease.Holder { return lease.Holder{Host: r.Host, PID: r.PID, RunID: r.RunID} }

func newRecord(gen uint64, h lease.Holder, ttl time.Duration) record {
	return record{Generation: gen, Host: h.Host, PID: h.PID, RunID: h.RunID, TTLMs: ttl.Milliseconds()}
}

// current is a lease znode as read: its record and the leader's stamps.
type current struct {
	rec     record
	version int32
	mtimeMs int64
}

func (c current) sinceMs() int64 {
	if c.rec.SinceMs != 0 {
		return c.rec.SinceMs
	}
	return c.mtimeMs
}

// expiresMs is when the generation is free unless renewed, by the leader's clock.
func (c current) expiresMs() int64 { return c.mtimeMs + c.rec.TTLMs + clockSlack.Milliseconds() }

// judge decides whether the current generation may be superseded at the leader's time nowMs.
func judge(c current, nowMs int64) bool { return c.rec.Released || nowMs >= c.expiresMs() }

// TryAcquire implements lease.Backend.
func (s *Store) TryAcquire(ctx context.Context, job string, h lease.Holder, ttl time.Duration) (lease.Grant, error) {
	if !lease.ValidJob(job) {
		return lease.Grant{}, fmt.Errorf("lease: job name %q", job)
	}
	if err := s.ensure(ctx, s.base+"/leases", s.historyPath(job)); err != nil {
		return lease.Grant{}, err
	}
	for range acquireAttempts {
		cur, found, err := s.read(ctx, job)
		if err != nil {
			return lease.Grant{}, err
		}
		var prev *current
		if found {
			prev = &cur
			if !cur.rec.Released {
				nowMs, err := s.now(ctx)
				if err != nil {
					return lease.Grant{}, err
				}
				if !judge(cur, nowMs) {
					return lease.Grant{}, &lease.HeldError{Job: job, Holder: cur.rec.holder(), Since: msTime(cur.sinceMs()), Expires: msTime(cur.expiresMs())}
				}
			}
		}
		gen, won, err := s.take(ctx, job, prev, h, ttl)
		if err != nil {
			return lease.Grant{}, err
		}
		if won {
			return lease.Grant{Generation: gen}, nil
		}
		// Another contender wrote first: the next round names it.
	}
	return lease.Grant{}, fmt.Errorf("lease %q: %d attempts lost to other contenders changing the lease meanwhile", job, acquireAttempts)
}

// take writes the next generation over prev (nil: the lease's first) and its history entry
// in one transaction. It reports false when another writer changed the znode first.
func (s *Store) take(ctx context.Context, job string, prev *current, h lease.Holder, ttl time.Duration) (uint64, bool, error) {
	gen := uint64(1)
	ev := eventData{Kind: lease.EventAcquired, Holder: h, TTLMs: ttl.Milliseconds()}
	if prev != nil {
		gen = prev.rec.Generation + 1
		ev.Superseded = &superseded{Generation: prev.rec.Generation, Holder: prev.rec.holder(), Released: prev.rec.Released,
			LastMs: prev.mtimeMs, TTLMs: prev.rec.TTLMs}
	}
	ev.Generation = gen
	data, err := json.Marshal(newRecord(gen, h, ttl))
	if err != nil {
		return 0, false, err
	}
	evData, err := json.Marshal(ev)
	if err != nil {
		return 0, false, err
	}
	var change any = &zk.CreateRequest{Path: s.leasePath(job), Data: data, Acl: zk.WorldACL(zk.PermAll)}
	if prev != nil {
		change = &zk.SetDataRequest{Path: s.leasePath(job), Data: data, Version: prev.version}
	}
	res, err := s.multi(ctx, change, s.historyEntry(job, evData))
	switch {
	case lostRace(res, err):
		return 0, false, nil
	case err != nil:
		return 0, false, s.wrap(err, fmt.Sprintf("lease %q: take generation %d", job, gen))
	}
	if seq, ok := sequence(res[1].String); ok && seq%pruneEvery == 0 {
		s.prune(ctx, job, historyKeep)
	}
	return gen, true, nil
}

// lostRace reports whether a transaction failed because its first operation found the lease
// znode changed (or created) by someone else.
func lostRace(res []zk.MultiResponse, err error) bool {
	if len(res) > 0 {
		err = errors.Join(err, res[0].Error)
	}
	return errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrBadVersion)
}

// Renew implements lease.Backend.
func (s *Store) Renew(ctx context.Context, job string, gen uint64, h lease.Holder, ttl time.Duration) error {
	for range acquireAttempts {
		cur, err := s.mine(ctx, job, gen)
		if err != nil {
			return err
		}
		rec := cur.rec
		rec.TTLMs, rec.SinceMs = ttl.Milliseconds(), cur.sinceMs()
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = call(ctx, func() (*zk.Stat, error) { return s.conn.Set(s.leasePath(job), data, cur.version) })
		if !errors.Is(err, zk.ErrBadVersion) {
			return s.wrap(err, fmt.Sprintf("lease %q: renew generation %d", job, gen))
		}
		// Changed since read: the next round says by whom.
	}
	return fmt.Errorf("lease %q: renew generation %d: the znode kept changing", job, gen)
}

// Confirm implements lease.Backend.
func (s *Store) Confirm(ctx context.Context, job string, gen uint64) error {
	_, err := s.mine(ctx, job, gen)
	return err
}

// mine reads the lease and returns it while gen is its live generation, and a *LostError
// otherwise.
func (s *Store) mine(ctx context.Context, job string, gen uint64) (current, error) {
	cur, found, err := s.read(ctx, job)
	switch {
	case err != nil:
		return cur, err
	case !found || cur.rec.Generation < gen:
		return cur, &lease.LostError{Job: job, Generation: gen, Reason: "its znode " + s.leasePath(job) + " is gone"}
	case cur.rec.Generation > gen:
		return cur, &lease.LostError{Job: job, Generation: gen,
			Reason: fmt.Sprintf("generation %d exists, held by %s", cur.rec.Generation, cur.rec.holder())}
	case cur.rec.Released:
		return cur, &lease.LostError{Job: job, Generation: gen, Reason: "released"}
	}
	return cur, nil
}

// Release implements lease.Backend.
func (s *Store) Release(ctx context.Context, job string, gen uint64, h lease.Holder) error {
	for range acquireAttempts {
		cur, err := s.mine(ctx, job, gen)
		if errors.Is(err, lease.ErrLost) {
			return nil // superseded or released already: nothing to give back
		}
		if err != nil {
			return err
		}
		rec := cur.rec
		rec.Released, rec.SinceMs = true, cur.sinceMs()
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		evData, err := json.Marshal(eventData{Kind: lease.EventReleased, Generation: gen, Holder: h, TTLMs: rec.TTLMs})
		if err != nil {
			return err
		}
		res, err := s.multi(ctx, &zk.SetDataRequest{Path: s.leasePath(job), Data: data, Version: cur.version}, s.historyEntry(job, evData))
		if !lostRace(res, err) {
			return s.wrap(err, fmt.Sprintf("lease %q: release generation %d", job, gen))
		}
	}
	return fmt.Errorf("lease %q: release generation %d: the znode kept changing", job, gen)
}

// Status implements lease.Inspector.
func (s *Store) Status(ctx context.Context, job string) (lease.Status, error) {
	cur, found, err := s.read(ctx, job)
	if err != nil {
		return lease.Status{}, err
	}
	nowMs, err := s.now(ctx)
	if err != nil {
		return lease.Status{}, err
	}
	if !found {
		return lease.Status{Job: job, Free: true, Now: msTime(nowMs)}, nil
	}
	return lease.Status{Job: job, Generation: cur.rec.Generation, Holder: cur.rec.holder(), Since: msTime(cur.sinceMs()),
		LastHeartbeat: msTime(cur.mtimeMs), Expires: msTime(cur.expiresMs()), Released: cur.rec.Released,
		Free: judge(cur, nowMs), Now: msTime(nowMs)}, nil
}

// read returns job's lease znode; found is false when it was never created.
func (s *Store) read(ctx context.Context, job string) (cur current, found bool, err error) {
	type got struct {
		data []byte
		stat *zk.Stat
	}
	g, err := call(ctx, func() (got, error) {
		data, stat, err := s.conn.Get(s.leasePath(job))
		return got{data, stat}, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return current{}, false, nil
	}
	if err != nil {
		return current{}, false, s.wrap(err, fmt.Sprintf("lease %q: read", job))
	}
	if err := json.Unmarshal(g.data, &cur.rec); err != nil {
		return current{}, false, fmt.Errorf("lease %q: znode %s holds no lease record: %w", job, s.leasePath(job), err)
	}
	cur.version, cur.mtimeMs = g.stat.Version, g.stat.Mtime
	return cur, true, nil
}

// now returns the leader's clock: the mtime of a write to the clock znode.
func (s *Store) now(ctx context.Context) (int64, error) {
	for range 2 {
		st, err := call(ctx, func() (*zk.Stat, error) { return s.conn.Set(s.clockPath(), nil, -1) })
		if errors.Is(err, zk.ErrNoNode) {
			if err := s.ensure(ctx, s.clockPath()); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, s.wrap(err, "read the leader's clock")
		}
		return st.Mtime, nil
	}
	return 0, fmt.Errorf("zookeeper %s: %s keeps disappearing", s.addrs, s.clockPath())
}

// ensure creates each path and its parents as empty persistent znodes where missing, once per
// Store (the tree is never deleted while neonmeter runs).
func (s *Store) ensure(ctx context.Context, paths ...string) error {
	for _, p := range paths {
		if _, ok := s.created.Load(p); ok {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i := range parts {
			node := "/" + strings.Join(parts[:i+1], "/")
			_, err := call(ctx, func() (string, error) { return s.conn.Create(node, nil, 0, zk.WorldACL(zk.PermAll)) })
			if err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return s.wrap(err, "create "+node)
			}
		}
		s.created.Store(p, true)
	}
	return nil
}

// multi runs ops as one transaction.
func (s *Store) multi(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	return call(ctx, func() ([]zk.MultiResponse, error) { return s.conn.Multi(ops...) })
}

// wrap names the ensemble in a failure to reach it; nil stays nil.
func (s *Store) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("zookeeper %s: %s: %w", s.addrs, what, err)
}

// call runs one request, giving up when ctx ends (the client has no contexts; the request
// itself ends by the session's timeouts).
func call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// zkLogger passes the client's messages (connections, retries) to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, a ...any) {
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, a...))
}
