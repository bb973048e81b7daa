package zkstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/logkey"
)

// eventPrefix names the sequential history znodes: e-0000000001, …
const eventPrefix = "e-"

// eventData is the data of a history znode; its ctime is the event's time.
type eventData struct {
	Kind       string       `json:"event"`
	Generation uint64       `json:"generation"`
	Holder     lease.Holder `json:"holder"`
	TTLMs      int64        `json:"ttl_ms"`
	Superseded *superseded  `json:"superseded,omitempty"`
}

// superseded is the generation an acquisition replaced, as it was when replaced.
type superseded struct {
	Generation uint64       `json:"generation"`
	Holder     lease.Holder `json:"holder"`
	Released   bool         `json:"released"`
	LastMs     int64        `json:"last_ms"` // its last heartbeat, or its release
	TTLMs      int64        `json:"ttl_ms"`
}

// end is when the superseded generation stopped being held, by the leader's clock.
func (p superseded) end() time.Time {
	if p.Released {
		return msTime(p.LastMs)
	}
	return msTime(p.LastMs + p.TTLMs)
}

func (p superseded) String() string {
	if p.Released {
		return fmt.Sprintf("generation %d of %s, released", p.Generation, p.Holder)
	}
	return fmt.Sprintf("generation %d of %s, expired (last heartbeat %s)", p.Generation, p.Holder, msTime(p.LastMs).Format(time.RFC3339))
}

// historyEntry is the operation that appends one entry to job's history.
func (s *Store) historyEntry(job string, data []byte) *zk.CreateRequest {
	return &zk.CreateRequest{Path: s.historyPath(job) + "/" + eventPrefix, Data: data, Acl: zk.WorldACL(zk.PermAll), Flags: zk.FlagSequence}
}

// sequence reads the sequence number ZooKeeper gave a history znode (its path or name).
func sequence(name string) (uint64, bool) {
	i := strings.LastIndex(name, "/"+eventPrefix)
	if i < 0 {
		if !strings.HasPrefix(name, eventPrefix) {
			return 0, false
		}
		i = -1
	}
	n, err := strconv.ParseUint(name[i+1+len(eventPrefix):], 10, 64)
	return n, err == nil
}

// children lists job's history znodes, oldest first.
func (s *Store) children(ctx context.Context, job string) ([]string, error) {
	names, err := call(ctx, func() ([]string, error) {
		names, _, err := s.conn.Children(s.historyPath(job))
		return names, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap(err, fmt.Sprintf("lease %q: history", job))
	}
	names = slices.DeleteFunc(names, func(n string) bool { _, ok := sequence(n); return !ok })
	slices.SortFunc(names, func(a, b string) int {
		x, _ := sequence(a)
		y, _ := sequence(b)
		return compareUint(x, y)
	})
	return names, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// prune deletes job's oldest history entries beyond the newest keep. Best effort: the next
// prune catches up.
func (s *Store) prune(ctx context.Context, job string, keep int) {
	names, err := s.children(ctx, job)
	if err != nil || len(names) <= keep {
		return
	}
	for _, n := range names[:len(names)-keep] {
		if _, err := call(ctx, func() (struct{}, error) { return struct{}{}, s.conn.Delete(s.historyPath(job)+"/"+n, -1) }); err != nil {
			s.log.Debug("lease history not pruned", logkey.Job, job, logkey.Err, err)
			return
		}
	}
}

// Events implements lease.Inspector: job's newest limit entries, newest first.
func (s *Store) Events(ctx context.Context, job string, limit int) ([]lease.Event, error) {
	names, err := s.children(ctx, job)
	if err != nil {
		return nil, err
	}
	out := make([]lease.Event, 0, min(limit, len(names)))
	for i := len(names) - 1; i >= 0 && len(out) < limit; i-- {
		e, ok, err := s.event(ctx, job, names[i])
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// event reads one history entry; ok is false when it was pruned meanwhile.
func (s *Store) event(ctx context.Context, job, name string) (lease.Event, bool, error) {
	type got struct {
		data []byte
		stat *zk.Stat
	}
	g, err := call(ctx, func() (got, error) {
		data, stat, err := s.conn.Get(s.historyPath(job) + "/" + name)
		return got{data, stat}, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return lease.Event{}, false, nil
	}
	if err != nil {
		return lease.Event{}, false, s.wrap(err, fmt.Sprintf("lease %q: history entry %s", job, name))
	}
	var d eventData
	if err := json.Unmarshal(g.data, &d); err != nil {
		return lease.Event{}, false, fmt.Errorf("lease %q: history entry %s: %w", job, name, err)
	}
	e := lease.Event{At: msTime(g.stat.Ctime), Generation: d.Generation, Kind: d.Kind, Holder: d.Holder,
		TTL: time.Duration(d.TTLMs) * time.Millisecond}
	if d.Superseded != nil {
		e.Superseded, e.PreviousEnd = d.Superseded.String(), d.Superseded.end()
	}
	return e, true, nil
}
