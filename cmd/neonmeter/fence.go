package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/lease"
	leasestore "github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/runid"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// The jobs that take a lease: one writer each among every neonmeter sharing the database
// (docs/architecture.md, "Leases").
const (
	jobBilling     = "billing"     // billing push and reconcile
	jobEnforcement = "enforcement" // enforcement cycles (dry runs write state too), release, ack-breaker
	jobAccounts    = "accounts"    // accounts sync and import
	jobRetention   = "retention"   // dropping expired partitions
	jobCollect     = "collect"     // serve's scheduled sweep: one replica sweeps, the others skip
)

// leaseJobs lists every job that takes a lease, in the order serve's cycle reaches them.
func leaseJobs() []string {
	return []string{jobAccounts, jobCollect, jobBilling, jobEnforcement, jobRetention}
}

// fence is what the fenced wrappers below ask before every side effect.
type fence interface {
	Check(ctx context.Context) error
}

// gate is one job's fence in this process: the lease held for the job now, if any. serve
// builds its stages once and takes the lease around each step, so the wrappers ask the gate.
type gate struct {
	job  string
	mu   sync.Mutex
	held *lease.Lease
}

// Check fails unless this process holds the job's lease and may still act under it.
func (g *gate) Check(ctx context.Context) error {
	g.mu.Lock()
	l := g.held
	g.mu.Unlock()
	if l == nil {
		return fmt.Errorf("lease %q is not held by this process: %w", g.job, lease.ErrLost)
	}
	return l.Check(ctx)
}

func (g *gate) set(l *lease.Lease) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = l
}

// jobLeases takes the jobs' leases for this process.
type jobLeases struct {
	backend lease.Backend
	ttl     time.Duration
	host    string
	log     *slog.Logger
	gates   map[string]*gate
	// where names the backend in errors; coord asks the coordination service whether it
	// answers (nil for ClickHouse, whose ping readiness makes anyway); done closes the backend.
	where string
	coord func(context.Context) error
	done  func()
}

// newJobLeases keeps the leases where NEONMETER_LEASE_BACKEND says: in the configured ClickHouse
// database, or in ZooKeeper under NEONMETER_ZOOKEEPER_ROOT/<database> (NEONMETER_LEASE_TTL).
func newJobLeases(cfg Config, conn driver.Conn, log *slog.Logger) (*jobLeases, error) {
	if cfg.LeaseBackend != leaseBackendZooKeeper {
		j := newJobLeasesOn(leasestore.New(conn, cfg.ClickHouseDB, log), cfg.LeaseTTL, log)
		j.where = "ClickHouse (NEONMETER_CLICKHOUSE_ADDR)"
		return j, nil
	}
	addrs, err := schema.SplitAddrs(cfg.ZooKeeperAddrs)
	if err != nil {
		return nil, usagef("%s_ZOOKEEPER_ADDRS: %v", envPrefix, err)
	}
	zs, err := zkstore.Open(zkstore.Options{Addrs: addrs, Root: cfg.ZooKeeperRoot, Database: cfg.ClickHouseDB,
		SessionTimeout: cfg.ZooKeeperSession, Logger: log})
	if err != nil {
		return nil, usagef("%s_ZOOKEEPER_ADDRS: %v", envPrefix, err)
	}
	j := newJobLeasesOn(zs, cfg.LeaseTTL, log)
	j.where, j.coord, j.done = "ZooKeeper (NEONMETER_ZOOKEEPER_ADDRS)", zs.Ping, zs.Close
	return j, nil
}

// ping asks the coordination service keeping the leases whether it answers; nil when the
// leases live in ClickHouse.
func (j *jobLeases) ping(ctx context.Context) error {
	if j.coord == nil {
		return nil
	}
	return j.coord(ctx)
}

// close releases the backend's connection (a ZooKeeper session).
func (j *jobLeases) close() {
	if j.done != nil {
		j.done()
	}
}

func newJobLeasesOn(b lease.Backend, ttl time.Duration, log *slog.Logger) *jobLeases {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	j := &jobLeases{backend: b, ttl: ttl, host: host, log: log, gates: map[string]*gate{}}
	for _, job := range leaseJobs() {
		j.gates[job] = &gate{job: job}
	}
	return j
}

// gate returns job's gate, for the wrappers of the stage doing the job.
func (j *jobLeases) gate(job string) *gate { return j.gates[job] }

// run takes job's lease (waiting for it when wait), runs fn in the lease's context with the
// job's gate open, and gives the lease back. fn's context ends when the lease is lost; a loss
// is then part of fn's error.
func (j *jobLeases) run(ctx context.Context, job string, wait bool, fn func(context.Context) error) error {
	g := j.gates[job]
	if g == nil {
		return fmt.Errorf("no lease for job %q", job)
	}
	h := lease.Holder{Host: j.host, PID: os.Getpid(), RunID: runid.New(job, time.Now())}
	l, err := lease.Acquire(ctx, j.backend, job, lease.Options{TTL: j.ttl, Holder: h, Wait: wait, Logger: j.log})
	if err != nil && !refused(err) && j.where != "" {
		return fmt.Errorf("take the %s lease in %s: %w", job, j.where, err)
	}
	if err != nil {
		return err
	}
	g.set(l)
	defer func() {
		g.set(nil)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			j.log.Warn("lease not released; it expires by itself", logkey.Job, job, logkey.Err, err)
		}
	}()
	err = fn(l.Context())
	if lost := l.Err(); lost != nil && err != nil && !errors.Is(err, lease.ErrLost) {
		err = fmt.Errorf("%w (%w)", err, lost)
	}
	return err
}

// command is run for a command: a refusal says what to do about it.
func (j *jobLeases) command(ctx context.Context, job string, wait bool, fn func(context.Context) error) error {
	err := j.run(ctx, job, wait, fn)
	if !wait && refused(err) {
		return fmt.Errorf("%w: another neonmeter is doing this job; retry once it is done, or pass --wait", err)
	}
	return err
}

// commandIf is command for work that writes, and fn alone for work that writes nothing (a dry
// run need not wait for another writer; its fenced wrappers would still refuse any write).
func (j *jobLeases) commandIf(ctx context.Context, writes bool, job string, wait bool, fn func(context.Context) error) error {
	if !writes {
		return fn(ctx)
	}
	return j.command(ctx, job, wait, fn)
}

// refused reports whether err is a refusal to start because another process holds the lease.
func refused(err error) bool {
	var held *lease.HeldError
	return errors.As(err, &held)
}

// fencedSink checks the billing lease before each request to Stripe.
type fencedSink struct {
	next billing.Sink
	f    fence
}

func (s fencedSink) Send(ctx context.Context, a billing.Action) (billing.Receipt, error) {
	if err := s.f.Check(ctx); err != nil {
		return billing.Receipt{}, fmt.Errorf("send %s: %w", a.Identifier, err)
	}
	return s.next.Send(ctx, a)
}

// Sendable passes billing's question whether a held value can now be sent (a read) to the
// sink when it can answer; a sink that cannot keeps held values held, as billing does.
func (s fencedSink) Sendable(ctx context.Context, customerID, target string, sink billing.SinkKind) (bool, error) {
	if chk, ok := s.next.(billing.Checker); ok {
		return chk.Sendable(ctx, customerID, target, sink)
	}
	return false, nil
}

// fencedBillingStore checks the billing lease before each write; reads pass through.
type fencedBillingStore struct {
	billing.Store
	f fence
}

func (s fencedBillingStore) InsertLedger(ctx context.Context, rows []billing.LedgerRow) error {
	return fenced(ctx, s.f, "write ledger", func() error { return s.Store.InsertLedger(ctx, rows) })
}

func (s fencedBillingStore) InsertLateAdjustments(ctx context.Context, adj []billing.LateAdjustment) error {
	return fenced(ctx, s.f, "write late adjustments", func() error { return s.Store.InsertLateAdjustments(ctx, adj) })
}

func (s fencedBillingStore) InsertDrift(ctx context.Context, rows []billing.Drift) error {
	return fenced(ctx, s.f, "write drift", func() error { return s.Store.InsertDrift(ctx, rows) })
}

func (s fencedBillingStore) InsertReconcileRun(ctx context.Context, run billing.ReconcileRun) error {
	return fenced(ctx, s.f, "write reconcile run", func() error { return s.Store.InsertReconcileRun(ctx, run) })
}

// fencedNeon checks the enforcement lease before each mutation of Neon; reads pass through.
type fencedNeon struct {
	enforcement.Neon
	f fence
}

func (n fencedNeon) UpdateProject(ctx context.Context, projectID string, u neon.ProjectUpdate) (*neon.Project, []neon.Operation, error) {
	if err := n.f.Check(ctx); err != nil {
		return nil, nil, fmt.Errorf("update project %s: %w", projectID, err)
	}
	return n.Neon.UpdateProject(ctx, projectID, u)
}

func (n fencedNeon) SuspendEndpoint(ctx context.Context, projectID, endpointID string) (*neon.Endpoint, []neon.Operation, error) {
	if err := n.f.Check(ctx); err != nil {
		return nil, nil, fmt.Errorf("suspend endpoint %s of project %s: %w", endpointID, projectID, err)
	}
	return n.Neon.SuspendEndpoint(ctx, projectID, endpointID)
}

func (n fencedNeon) UpdateEndpoint(ctx context.Context, projectID, endpointID string, u neon.EndpointUpdate) (*neon.Endpoint, []neon.Operation, error) {
	if err := n.f.Check(ctx); err != nil {
		return nil, nil, fmt.Errorf("update endpoint %s of project %s: %w", endpointID, projectID, err)
	}
	return n.Neon.UpdateEndpoint(ctx, projectID, endpointID, u)
}

// fencedEnforcementStore checks the enforcement lease before each write; reads pass through.
type fencedEnforcementStore struct {
	enforcement.Store
	f fence
}

func (s fencedEnforcementStore) WriteStates(ctx context.Context, states []enforcement.State) error {
	return fenced(ctx, s.f, "write enforcement state", func() error { return s.Store.WriteStates(ctx, states) })
}

func (s fencedEnforcementStore) InsertAudit(ctx context.Context, recs []enforcement.AuditRecord) error {
	return fenced(ctx, s.f, "write enforcement audit", func() error { return s.Store.InsertAudit(ctx, recs) })
}

func (s fencedEnforcementStore) InsertBreakerEvent(ctx context.Context, e enforcement.BreakerEvent) error {
	return fenced(ctx, s.f, "write breaker event", func() error { return s.Store.InsertBreakerEvent(ctx, e) })
}

func (s fencedEnforcementStore) WriteAtRisk(ctx context.Context, rows []enforcement.AtRiskRow) error {
	return fenced(ctx, s.f, "write at-risk projects", func() error { return s.Store.WriteAtRisk(ctx, rows) })
}

// fencedAccountsStore checks the accounts lease before each write; reads pass through.
type fencedAccountsStore struct {
	accounts.Store
	f fence
}

func (s fencedAccountsStore) Insert(ctx context.Context, records []accounts.Record) error {
	return fenced(ctx, s.f, "write account history", func() error { return s.Store.Insert(ctx, records) })
}

// fenced runs write once f allows it.
func fenced(ctx context.Context, f fence, what string, write func() error) error {
	if err := f.Check(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return write()
}
