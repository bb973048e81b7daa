// Package chstore keeps leases on one ClickHouse server. Generation g of job J is the table
// lease_J_g: creating it (without IF NOT EXISTS) is the atomic step only one contender wins,
// and its rows are the holder's heartbeats, stamped with the server's clock so that the hosts'
// clocks do not matter. The current generation is the highest g among the tables; it is free
// once released, or once the server's clock passes its last heartbeat plus its TTL. A new
// holder drops every generation older than the one it superseded.
//
// Every acquisition and release is also appended to lease_events (migration 0006), the history
// of who held each job's lease.
//
// On a cluster the same tables would need a replicated engine and ON CLUSTER DDL, whose
// atomicity is weaker and which stalls while a replica is down: the backend refuses to run on
// a connection to a cluster (Usable); a ZooKeeper backend is the fit there.
package chstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/schema"
)

// ClickHouse error codes the backend reads.
const (
	codeTableExists  = 57
	codeUnknownTable = 60
)

// clockSlack covers the server stamping heartbeats in whole seconds: a heartbeat stamped s
// happened before s+1, so a generation expires one second after its stamp plus TTL.
const clockSlack = time.Second

// acquireAttempts bounds the rounds of one TryAcquire lost to contenders that changed the
// tables meanwhile.
const acquireAttempts = 3

// Store is the ClickHouse lease backend of database db.
type Store struct {
	conn driver.Conn
	db   string
	log  *slog.Logger
}

var (
	_ lease.Backend   = (*Store)(nil)
	_ lease.Inspector = (*Store)(nil)
)

// New returns the backend over conn for database db; log (nil: none) gets the failures to
// record history, which never fail a lease.
func New(conn driver.Conn, db string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{conn: conn, db: db, log: log}
}

// generation is one lease table as system.tables lists it.
type generation struct {
	gen       uint64
	createdMs uint64 // the table's metadata time, by the server's clock
}

// state is what a generation's heartbeats say.
type state struct {
	holder           lease.Holder
	firstMs, lastMs  uint64
	ttlMs            uint64
	released         bool
	rows             uint64
	createdMs, nowMs uint64
}

// Judge decides whether a generation may be superseded at the server's time s.nowMs, and
// until when it is held. A generation without heartbeats (its creator died between creating
// the table and writing to it) is held for ttl after its creation.
func judge(s state, ttl time.Duration) (free bool, expiresMs uint64) {
	if s.released {
		return true, s.lastMs
	}
	base, life := s.lastMs, s.ttlMs
	if s.rows == 0 {
		base, life = s.createdMs, uint64(ttl.Milliseconds())
	}
	expiresMs = base + life + uint64(clockSlack.Milliseconds())
	return s.nowMs >= expiresMs, expiresMs
}

// Usable reports why the backend cannot keep leases over conn: its generations are tables of
// one server, so on a cluster (schema.ClusterOf) two replicas could each grant the same lease.
func Usable(conn driver.Conn) error {
	if c := schema.ClusterOf(conn); c != "" {
		return fmt.Errorf("lease: the ClickHouse lease backend keeps its tables on one server and cannot run on cluster %s "+
			"(NEONMETER_CLICKHOUSE_CLUSTER); jobs that take a lease need a ZooKeeper lease backend there", c)
	}
	return nil
}

// TryAcquire implements lease.Backend. It refuses a connection to a cluster (Usable).
func (s *Store) TryAcquire(ctx context.Context, job string, h lease.Holder, ttl time.Duration) (lease.Grant, error) {
	if !lease.ValidJob(job) {
		return lease.Grant{}, fmt.Errorf("lease: job name %q", job)
	}
	if err := Usable(s.conn); err != nil {
		return lease.Grant{}, err
	}
	for range acquireAttempts {
		gens, _, err := s.generations(ctx, job)
		if err != nil {
			return lease.Grant{}, err
		}
		var (
			cur generation
			st  state
		)
		if len(gens) > 0 {
			cur = gens[len(gens)-1]
			st, err = s.state(ctx, job, cur)
			if isCode(err, codeUnknownTable) {
				continue // dropped meanwhile: look again
			}
			if err != nil {
				return lease.Grant{}, err
			}
			if free, exp := judge(st, ttl); !free {
				return lease.Grant{}, &lease.HeldError{Job: job, Holder: st.holder, Since: msTime(st.firstMs), Expires: msTime(exp)}
			}
		}
		next := cur.gen + 1
		err = createQuery(job, next, h, ttl).Exec(ctx, s.conn, s.db)
		if isCode(err, codeTableExists) {
			continue // another contender won it: the next round names the winner
		}
		if err != nil {
			return lease.Grant{}, fmt.Errorf("lease %q: create generation %d: %w", job, next, err)
		}
		if won, err := s.stillNewest(ctx, job, next); err != nil || !won {
			if err != nil {
				return lease.Grant{}, err
			}
			continue
		}
		s.dropBefore(ctx, job, cur.gen)
		s.record(ctx, eventQuery(job, next, lease.EventAcquired, h, ttl, superseded(cur, st)))
		return lease.Grant{Generation: next}, nil
	}
	return lease.Grant{}, fmt.Errorf("lease %q: %d attempts lost to other contenders changing the lease meanwhile", job, acquireAttempts)
}

// stillNewest checks the generation just created is the newest. A contender whose view was
// very old can recreate a generation dropped long ago; it then holds nothing, so it drops it.
func (s *Store) stillNewest(ctx context.Context, job string, gen uint64) (bool, error) {
	gens, _, err := s.generations(ctx, job)
	if err != nil {
		return false, err
	}
	if len(gens) == 0 || gens[len(gens)-1].gen != gen {
		_ = dropQuery(job, gen).Exec(ctx, s.conn, s.db) // best effort: an older generation never counts
		return false, nil
	}
	return true, nil
}

// dropBefore drops the generations older than keep. Best effort: a table left behind is
// dropped by the next holder, and an older generation never decides anything.
func (s *Store) dropBefore(ctx context.Context, job string, keep uint64) {
	gens, _, err := s.generations(ctx, job)
	if err != nil {
		return
	}
	for _, g := range gens {
		if g.gen < keep {
			_ = dropQuery(job, g.gen).Exec(ctx, s.conn, s.db)
		}
	}
}

// Renew implements lease.Backend.
func (s *Store) Renew(ctx context.Context, job string, gen uint64, h lease.Holder, ttl time.Duration) error {
	err := heartbeatQuery(job, gen, h, ttl, false).Exec(ctx, s.conn, s.db)
	if isCode(err, codeUnknownTable) {
		return &lease.LostError{Job: job, Generation: gen, Reason: "its table was dropped by a newer holder"}
	}
	if err != nil {
		return fmt.Errorf("lease %q: renew generation %d: %w", job, gen, err)
	}
	return s.Confirm(ctx, job, gen)
}

// Confirm implements lease.Backend.
func (s *Store) Confirm(ctx context.Context, job string, gen uint64) error {
	gens, _, err := s.generations(ctx, job)
	if err != nil {
		return err
	}
	if len(gens) > 0 && gens[len(gens)-1].gen == gen {
		return nil
	}
	if len(gens) == 0 || gens[len(gens)-1].gen < gen {
		return &lease.LostError{Job: job, Generation: gen, Reason: "its table is gone"}
	}
	top := gens[len(gens)-1]
	reason := fmt.Sprintf("generation %d exists", top.gen)
	if st, err := s.state(ctx, job, top); err == nil && st.rows > 0 {
		reason += ", held by " + st.holder.String()
	}
	return &lease.LostError{Job: job, Generation: gen, Reason: reason}
}

// Release implements lease.Backend.
func (s *Store) Release(ctx context.Context, job string, gen uint64, h lease.Holder) error {
	err := heartbeatQuery(job, gen, h, 0, true).Exec(ctx, s.conn, s.db)
	if isCode(err, codeUnknownTable) {
		return nil // superseded already: nothing to give back
	}
	if err != nil {
		return err
	}
	s.record(ctx, eventQuery(job, gen, lease.EventReleased, h, 0, ""))
	return nil
}

// superseded describes the generation a new holder replaced, for its acquired event.
func superseded(g generation, st state) string {
	switch {
	case g.gen == 0:
		return ""
	case st.released:
		return fmt.Sprintf("generation %d of %s, released", g.gen, st.holder)
	case st.rows == 0:
		return fmt.Sprintf("generation %d, never heartbeated, expired", g.gen)
	}
	return fmt.Sprintf("generation %d of %s, expired (last heartbeat %s)", g.gen, st.holder, msTime(st.lastMs).Format(time.RFC3339))
}

// record appends to the lease history. It is history only: a failure is logged, not returned.
func (s *Store) record(ctx context.Context, q schema.Query) {
	if err := q.Exec(ctx, s.conn, s.db); err != nil {
		s.log.Warn("lease history not recorded", logkey.Err, err)
	}
}

// Events implements lease.Inspector: job's newest limit history rows, newest first.
func (s *Store) Events(ctx context.Context, job string, limit int) ([]lease.Event, error) {
	out, err := schema.All(ctx, eventsQuery(job, limit), s.conn, s.db, func(row schema.Row) (lease.Event, error) {
		var (
			e     lease.Event
			pid   uint32
			ttlMs uint64
		)
		err := row.Scan(&e.At, &e.Generation, &e.Kind, &e.Holder.Host, &pid, &e.Holder.RunID, &ttlMs, &e.Superseded)
		e.At, e.Holder.PID, e.TTL = e.At.UTC(), int(pid), time.Duration(ttlMs)*time.Millisecond
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("lease %q: events: %w", job, err)
	}
	return out, nil
}

// Status implements lease.Inspector. A generation whose creator died before its first
// heartbeat names no holder; it is judged with DefaultTTL.
func (s *Store) Status(ctx context.Context, job string) (lease.Status, error) {
	for range acquireAttempts {
		gens, nowMs, err := s.generations(ctx, job)
		if err != nil {
			return lease.Status{}, err
		}
		if len(gens) == 0 {
			return lease.Status{Job: job, Free: true, Now: msTime(nowMs)}, nil
		}
		cur := gens[len(gens)-1]
		st, err := s.state(ctx, job, cur)
		if isCode(err, codeUnknownTable) {
			continue // superseded meanwhile: look again
		}
		if err != nil {
			return lease.Status{}, err
		}
		free, exp := judge(st, lease.DefaultTTL)
		since, last := st.firstMs, st.lastMs
		if st.rows == 0 {
			since, last = st.createdMs, st.createdMs
		}
		return lease.Status{Job: job, Generation: cur.gen, Holder: st.holder, Since: msTime(since), LastHeartbeat: msTime(last),
			Expires: msTime(exp), Released: st.released, Free: free, Now: msTime(st.nowMs)}, nil
	}
	return lease.Status{}, fmt.Errorf("lease %q: its generations kept changing while read", job)
}

// generations lists job's lease tables, oldest first, and the server's time. Reading
// system.tables fails with "unknown table" when a table is dropped while it is listed (a new
// holder dropping the generations it superseded); the listing is then simply taken again.
func (s *Store) generations(ctx context.Context, job string) ([]generation, uint64, error) {
	for range acquireAttempts {
		gens, nowMs, err := s.listGenerations(ctx, job)
		if !isCode(err, codeUnknownTable) {
			return gens, nowMs, err
		}
	}
	return s.listGenerations(ctx, job)
}

func (s *Store) listGenerations(ctx context.Context, job string) ([]generation, uint64, error) {
	var (
		out   []generation
		nowMs uint64
	)
	prefix := tablePrefix(job)
	err := generationsQuery(job).Each(ctx, s.conn, s.db, func(row schema.Row) error {
		var (
			name string
			g    generation
		)
		if err := row.Scan(&name, &g.createdMs, &nowMs); err != nil {
			return err
		}
		var ok bool
		if g.gen, ok = parseGeneration(name, prefix); ok {
			out = append(out, g)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("lease %q: generations: %w", job, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gen < out[j].gen })
	return out, nowMs, nil
}

// state reads generation g's heartbeats.
func (s *Store) state(ctx context.Context, job string, g generation) (state, error) {
	rows, err := stateQuery(job, g.gen).Select(ctx, s.conn, s.db)
	if err != nil {
		return state{}, err
	}
	defer rows.Close()
	st := state{createdMs: g.createdMs}
	if !rows.Next() {
		return st, fmt.Errorf("lease %q: generation %d: no state row: %w", job, g.gen, rows.Err())
	}
	var (
		pid      uint64
		released uint8
	)
	if err := rows.Scan(&st.holder.Host, &pid, &st.holder.RunID, &st.firstMs, &st.lastMs, &st.ttlMs, &released, &st.rows, &st.nowMs); err != nil {
		return st, fmt.Errorf("lease %q: scan generation %d: %w", job, g.gen, err)
	}
	st.holder.PID, st.released = int(pid), released != 0
	return st, rows.Err()
}

func tablePrefix(job string) string { return "lease_" + job + "_" }

// parseGeneration reads the generation of a table named "<prefix><digits>".
func parseGeneration(name, prefix string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	g, err := strconv.ParseUint(digits, 10, 64)
	return g, err == nil
}

func isCode(err error, code int32) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == code
}

func msTime(ms uint64) time.Time { return time.UnixMilli(int64(ms)).UTC() }
