package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/enforcement"
	enforcementstore "github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	leasestore "github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/plans"
	"github.com/neonmeter/neonmeter/schema"
)

// otherHolder is a lease holder playing another neonmeter process.
var otherHolder = lease.Holder{Host: "other-host", PID: 4242, RunID: "run-of-the-other-process"}

// holdLease takes job's lease as otherHolder until the returned func (or the test's end).
func holdLease(t *testing.T, conn driver.Conn, db, job string) (release func()) {
	t.Helper()
	l, err := lease.Acquire(t.Context(), leasestore.New(conn, db, nil), job, lease.Options{TTL: time.Minute, Holder: otherHolder})
	if err != nil {
		t.Fatalf("take the %s lease: %v", job, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = l.Release(context.Background()) }) }
	t.Cleanup(release)
	return release
}

// namesHolder asserts a refused command exited 1 and named the holder and --wait.
func namesHolder(t *testing.T, what string, code int, errOut string) {
	t.Helper()
	if code != exitFailure {
		t.Fatalf("%s while another process holds the lease: exit %d, want %d\n%s", what, code, exitFailure, errOut)
	}
	for _, want := range []string{"other-host", "pid 4242", otherHolder.RunID, "--wait"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("%s: the refusal does not name %q:\n%s", what, want, errOut)
		}
	}
}

// denyFence refuses every side effect.
type denyFence struct{}

var errDenied = errors.New("denied by the test fence")

func (denyFence) Check(context.Context) error { return errDenied }

// Every method of the interfaces the wrappers fence is either fenced or a read listed here: a
// write added to an interface later fails this test until it is fenced (or listed as a read).
func TestFence_WrappersCoverEveryWrite(t *testing.T) {
	for _, c := range []struct {
		iface   reflect.Type
		wrapper any // inner nil: a method passed through panics
		reads   []string
	}{
		{reflect.TypeFor[billing.Sink](), fencedSink{f: denyFence{}}, nil},
		{reflect.TypeFor[billing.Store](), fencedBillingStore{f: denyFence{}},
			[]string{"Usage", "UsageTotals", "UsageOf", "Lagging", "Ledger", "LastReconciles", "LatestReconcile"}},
		{reflect.TypeFor[enforcement.Neon](), fencedNeon{f: denyFence{}}, []string{"ListProjects", "GetProject", "ListEndpoints", "WaitOperations"}},
		{reflect.TypeFor[enforcement.Store](), fencedEnforcementStore{f: denyFence{}},
			[]string{"UsageSince", "HourlyWatermarks", "Progress", "AtRiskSet", "States", "AuditOf", "LastBreakerEvent"}},
		{reflect.TypeFor[accounts.Store](), fencedAccountsStore{f: denyFence{}}, []string{"At", "History", "UsageProjects"}},
	} {
		v := reflect.ValueOf(c.wrapper)
		if !v.Type().Implements(c.iface) {
			t.Fatalf("%T does not implement %s", c.wrapper, c.iface)
		}
		for _, r := range c.reads {
			if _, ok := c.iface.MethodByName(r); !ok {
				t.Errorf("%s has no method %s: update the list of reads", c.iface, r)
			}
		}
		for i := range c.iface.NumMethod() {
			m := c.iface.Method(i)
			if slices.Contains(c.reads, m.Name) {
				continue
			}
			if err := callDenied(v.MethodByName(m.Name)); !errors.Is(err, errDenied) {
				t.Errorf("%s.%s is not fenced (%v): fence it in fence.go, or list it as a read here", c.iface, m.Name, err)
			}
		}
	}
	var _ billing.Checker = fencedSink{} // billing asks its sink for this optional interface
}

// callDenied calls m with zero arguments and returns its error result, or the panic of a call
// that reached the wrapper's nil inner value.
func callDenied(m reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("passed through: %v", r)
		}
	}()
	args := make([]reflect.Value, m.Type().NumIn())
	for i := range args {
		if in := m.Type().In(i); in == reflect.TypeFor[context.Context]() {
			args[i] = reflect.ValueOf(context.Background())
		} else {
			args[i] = reflect.Zero(in)
		}
	}
	out := m.Call(args)
	err, _ = out[len(out)-1].Interface().(error)
	return err
}

// stallSink holds the first send until released: a pusher stalled inside a send, before the
// fence looked at its lease.
type stallSink struct {
	next    billing.Sink
	mu      sync.Mutex
	first   *billing.Action
	entered chan struct{}
	release chan struct{}
}

func (s *stallSink) Send(ctx context.Context, a billing.Action) (billing.Receipt, error) {
	s.mu.Lock()
	first := s.first == nil
	if first {
		s.first = &a
		close(s.entered)
	}
	s.mu.Unlock()
	if first {
		<-s.release
	}
	return s.next.Send(ctx, a)
}

// billingScene is one customer on a metered plan, its project's usage in ClickHouse and the
// recording fake Stripe, with the settings of a CLI run against them.
type billingScene struct {
	conn  driver.Conn
	db    string
	fake  *stripefake.Server
	sc    *client.API
	cat   *plans.Catalog
	cfg   Config
	now   time.Time
	hours []time.Time
}

const sceneKey = "sk_test_lease_scene"

func newBillingScene(t *testing.T) *billingScene {
	t.Helper()
	clearEnv(t)
	ctx := t.Context()
	s := &billingScene{now: time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC)}
	s.conn, s.db = chtest.New(t)
	s.fake = stripefake.New(stripefake.Options{APIKey: sceneKey, Now: func() time.Time { return s.now }})
	srv := httptest.NewServer(s.fake)
	t.Cleanup(srv.Close)
	s.sc = accounts.NewStripeClient(accounts.StripeOptions{Key: sceneKey, URL: srv.URL})
	catPath := writeTemp(t, "plans.yaml", "version: 1\nplans:\n  - name: free\n  - name: pro\n    billing:\n      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}\n")
	var err error
	if s.cat, err = plans.Load(catPath); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Setup(ctx, s.sc, s.cat, true); err != nil {
		t.Fatal(err)
	}
	cus, err := s.sc.Customers.New(&stripe.CustomerParams{Name: stripe.String("Acme")})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := accounts.ParseCSV("map.csv", strings.NewReader("project_id,customer_id,plan,valid_from\nproj-acme,"+cus.ID+",pro,2026-11-01\n"), s.cat, s.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(ctx, accountsstore.New(s.conn, s.db), rows, s.now, false, nil); err != nil {
		t.Fatal(err)
	}
	// 8, 5 and 5 CU-hours in three hours well inside the push window.
	h := s.now.Truncate(time.Hour).Add(-6 * time.Hour)
	s.hours = []time.Time{h, h.Add(time.Hour), h.Add(2 * time.Hour)}
	s.usage(t, s.hours[0], 8*3600, 1)
	s.usage(t, s.hours[1], 5*3600, 1)
	s.usage(t, s.hours[2], 5*3600, 1)
	for k, v := range map[string]string{
		"NEONMETER_CLICKHOUSE_ADDR": chtest.Addr(), "NEONMETER_CLICKHOUSE_DATABASE": s.db, "NEONMETER_PLANS_FILE": catPath,
		"NEONMETER_DEFAULT_PLAN": "free", "NEONMETER_STRIPE_API_KEY": sceneKey, "NEONMETER_STRIPE_API_URL": srv.URL, "NEONMETER_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	if s.cfg, err = LoadConfig(); err != nil {
		t.Fatal(err)
	}
	s.fake.ResetRequests()
	return s
}

// usage writes the project's compute of one hour, in CU-seconds, as collection version v.
func (s *billingScene) usage(t *testing.T, hour time.Time, cuSeconds, v uint64) {
	t.Helper()
	err := collectorstore.New(s.conn, s.db).InsertFacts(t.Context(), []collector.Fact{{OrgID: "org-acme", ProjectID: "proj-acme",
		Metric: "compute_unit_seconds", Hour: hour, Value: cuSeconds, PeriodID: "period-1", PeriodPlan: "scale", CollectedAt: s.now, Version: v}})
	if err != nil {
		t.Fatal(err)
	}
}

// pusher is a pusher as newPusher wires it, fenced by f, on the scene's clock; mod adjusts it.
func (s *billingScene) pusher(t *testing.T, f fence, mod func(*billing.Config)) *billing.Pusher {
	t.Helper()
	c := pusherConfig(s.cfg, s.sc, s.conn, s.cat, nil, 0, chtest.Logger(t), f)
	c.Now, c.Concurrency, c.SummarySettle = func() time.Time { return s.now }, 1, -1
	if mod != nil {
		mod(&c)
	}
	p, err := billing.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// meterEvents counts the meter events the fake received, by identifier.
func (s *billingScene) meterEvents() map[string]int {
	out := map[string]int{}
	for _, r := range s.fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/billing/meter_events" {
			out[r.Form.Get("identifier")]++
		}
	}
	return out
}

// The overlapping pushes: push A holds the billing lease and stalls inside a send past
// its TTL (its renewals stalled too, as in a paused process); a revision of the usage arrives;
// push B takes the lease and pushes revision 2; then A resumes. A is fenced: it sends nothing
// and writes no outcome, and its Push fails with the lease's loss. Stripe ends with revision 2's
// value (no drift), each value sent once.
func TestBilling_OverlappingPushIsFenced(t *testing.T) {
	s := newBillingScene(t)
	ctx := t.Context()
	backendA := leasetest.Wrap(leasestore.New(s.conn, s.db, nil))
	t.Cleanup(backendA.Resume)
	leasesA := newJobLeasesOn(backendA, 2*time.Second, chtest.Logger(t))
	stall := &stallSink{entered: make(chan struct{}), release: make(chan struct{})}
	pushA := s.pusher(t, leasesA.gate(jobBilling), func(c *billing.Config) { stall.next, c.Sink = c.Sink, stall })
	var resA billing.Result
	doneA := make(chan error, 1)
	go func() {
		doneA <- leasesA.run(ctx, jobBilling, false, func(ctx context.Context) (err error) {
			resA, err = pushA.Push(ctx, false)
			return err
		})
	}()
	select {
	case <-stall.entered:
	case err := <-doneA:
		t.Fatalf("push A ended before sending: %v", err)
	}
	backendA.Pause() // A's process is paused: no more renewals either

	s.usage(t, s.hours[0], 60_008*3600, 2) // Neon revises the first hour
	leasesB := newJobLeasesOn(leasestore.New(s.conn, s.db, nil), 10*time.Second, chtest.Logger(t))
	pushB := s.pusher(t, leasesB.gate(jobBilling), nil)
	var resB billing.Result
	if err := leasesB.run(ctx, jobBilling, true, func(ctx context.Context) (err error) {
		resB, err = pushB.Push(ctx, false)
		return err
	}); err != nil {
		t.Fatalf("push B: %v", err)
	}
	if resB.Pushed != 3 {
		t.Fatalf("push B confirmed %d values, want 3 (revision 2 of the first hour, the two others)", resB.Pushed)
	}

	close(stall.release) // A resumes inside its send of revision 1
	errA := <-doneA
	if !errors.Is(errA, lease.ErrLost) {
		t.Fatalf("push A after its lease was taken over: %v, want the lease's loss", errA)
	}
	events := s.meterEvents()
	if n := events[stall.first.Identifier]; n != 0 || stall.first.Units != 8 {
		t.Fatalf("A's stale value %d (%s) reached Stripe %d time(s)", stall.first.Units, stall.first.Identifier, n)
	}
	if len(events) != 3 {
		t.Fatalf("%d distinct meter events, want 3: %v", len(events), events)
	}
	for id, n := range events {
		if n != 1 {
			t.Errorf("meter event %s sent %d times", id, n)
		}
	}
	if n := ledgerRowsOf(t, s.conn, s.db, resA.RunID); n != 0 {
		t.Fatalf("push A wrote %d ledger outcome row(s) after losing its lease", n)
	}
	var rec billing.ReconcileResult
	if err := leasesB.run(ctx, jobBilling, false, func(ctx context.Context) (err error) {
		rec, err = pushB.Reconcile(ctx, s.hours[0], s.hours[2].Add(time.Hour), false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if rec.Compared < 3 || len(rec.Drift) != 0 {
		t.Fatalf("reconcile: %d compared, drift %+v; want 3 and none (Stripe must hold revision 2)", rec.Compared, rec.Drift)
	}
}

// ledgerRowsOf counts the outcome rows (anything but intents) run wrote to the ledger.
func ledgerRowsOf(t *testing.T, conn driver.Conn, db, run string) uint64 {
	t.Helper()
	q := schema.Query{Name: "test.ledger_outcomes", Kind: schema.KindSelect,
		SQL: "SELECT count() FROM {db}.billing_ledger WHERE run_id = ? AND status != 'intent'", Args: []any{run}}
	rows, err := q.Select(t.Context(), conn, db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// billing push and reconcile refuse, naming the holder, while another process holds the
// billing lease, and send nothing; with --wait they run once it is released.
func TestBilling_CommandsRefuseWhileLeaseHeld(t *testing.T) {
	s := newBillingScene(t)
	ctx := t.Context()
	release := holdLease(t, s.conn, s.db, jobBilling)
	code, _, errOut := run(t, ctx, "billing", "push")
	namesHolder(t, "billing push", code, errOut)
	code, _, errOut = run(t, ctx, "billing", "reconcile", "--from", "2026-11-01", "--to", "2026-11-02", "--repair")
	namesHolder(t, "billing reconcile --repair", code, errOut)
	if events := s.meterEvents(); len(events) != 0 {
		t.Fatalf("refused commands sent %d meter events", len(events))
	}
	mustRun(t, ctx, "billing", "push", "--dry-run")
	go func() {
		time.Sleep(500 * time.Millisecond)
		release()
	}()
	mustRun(t, ctx, "billing", "push", "--wait")
}

// accounts sync refuses while another process holds the accounts lease, before asking Stripe.
func TestAccounts_SyncRefusedWhileLeaseHeld(t *testing.T) {
	s := newBillingScene(t)
	release := holdLease(t, s.conn, s.db, jobAccounts)
	code, _, errOut := run(t, t.Context(), "accounts", "sync")
	namesHolder(t, "accounts sync", code, errOut)
	if n := len(s.fake.Requests()); n != 0 {
		t.Fatalf("the refused sync sent %d Stripe requests", n)
	}
	release()
	if code, out, errOut := run(t, t.Context(), "accounts", "sync"); code != exitOK {
		t.Fatalf("accounts sync once the lease is free: exit %d\n%s%s", code, out, errOut)
	}
}

// An enforcement cycle whose holder lost the lease (paused past its TTL) changes nothing in Neon
// and records nothing; the next holder's cycle does act. enforce (dry runs too) refuses while
// the lease is held elsewhere.
func TestEnforce_MutationFencedAfterLeaseLost(t *testing.T) {
	s, db := simEnv(t, 30)
	ctx := t.Context()
	mustRun(t, ctx, "migrate")
	mustRun(t, ctx, "collect", "--last", "24h")
	catPath := writeTemp(t, "plans.yaml", "version: 1\nplans:\n  - name: free\n    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5, suspend_timeout: 5m}\n"+
		"    limits:\n      compute_unit_seconds: {kind: hard, max: 1 CU-second}\n")
	for k, v := range map[string]string{"NEONMETER_PLANS_FILE": catPath, "NEONMETER_DEFAULT_PLAN": "free", "NEONMETER_ENFORCEMENT_MODE": "enforce",
		"NEONMETER_ENFORCEMENT_GRACE": "0s", "NEONMETER_ENFORCEMENT_MAX_PERCENT": "100"} {
		t.Setenv(k, v)
	}
	conn := chtest.Connect(t)
	release := holdLease(t, conn, db, jobEnforcement)
	code, _, errOut := run(t, ctx, "enforce", "--dry-run")
	namesHolder(t, "enforce --dry-run", code, errOut)
	release()

	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := loadCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := newNeonClient(cfg, prometheus.NewRegistry(), chtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	backendA := leasetest.Wrap(leasestore.New(conn, db, nil))
	t.Cleanup(backendA.Resume)
	leasesA := newJobLeasesOn(backendA, 2*time.Second, chtest.Logger(t))
	recA, err := newEnforcer(cfg, client, conn, catalog, policyFromConfig(cfg), nil, chtest.Logger(t), leasesA.gate(jobEnforcement))
	if err != nil {
		t.Fatal(err)
	}
	before := simMutations(s)
	var repA *enforcement.Report
	errA := leasesA.run(ctx, jobEnforcement, false, func(ctx context.Context) (err error) {
		backendA.Pause()                    // the process pauses: renewals stop
		time.Sleep(2500 * time.Millisecond) // past the TTL
		repA, err = recA.Cycle(ctx, enforcement.CycleOptions{})
		return err
	})
	if !errors.Is(errA, lease.ErrLost) {
		t.Fatalf("the cycle of a holder that lost its lease: %v, want the lease's loss", errA)
	}
	if n := simMutations(s) - before; n != 0 {
		t.Fatalf("the fenced cycle sent %d mutation(s) to Neon", n)
	}
	// The first project acted on failed on the fence, and the cycle stopped at its record.
	if repA == nil || !strings.Contains(errA.Error(), "write enforcement") {
		t.Fatalf("the cycle did not stop at the fenced write: %v", errA)
	}
	states, err := enforcementstore.New(conn, db).States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 0 {
		t.Fatalf("the fenced cycle wrote %d state row(s)", len(states))
	}

	leasesB := newJobLeasesOn(leasestore.New(conn, db, nil), 10*time.Second, chtest.Logger(t))
	recB, err := newEnforcer(cfg, client, conn, catalog, policyFromConfig(cfg), nil, chtest.Logger(t), leasesB.gate(jobEnforcement))
	if err != nil {
		t.Fatal(err)
	}
	if err := leasesB.run(ctx, jobEnforcement, true, func(ctx context.Context) error {
		_, err := recB.Cycle(ctx, enforcement.CycleOptions{})
		return err
	}); err != nil {
		t.Fatalf("the next holder's cycle: %v", err)
	}
	if simMutations(s) == before {
		t.Fatal("the next holder's cycle changed nothing either: the scene enforces nothing")
	}
}

// serve runs each step under its job's lease and skips, counted, a step whose lease another
// process holds.
func TestServe_StepSkippedWhileLeaseHeld(t *testing.T) {
	conn, db := chtest.New(t)
	reg := prometheus.NewRegistry()
	d := newDaemon(chtest.Logger(t), nil, reg)
	d.leases = newJobLeasesOn(leasestore.New(conn, db, nil), 10*time.Second, chtest.Logger(t))
	ran := map[string]bool{}
	steps := []step{
		{name: "billing_push", lease: jobBilling, run: func(ctx context.Context) error {
			ran["billing_push"] = true
			return d.leases.gate(jobBilling).Check(ctx)
		}},
		{name: "retention", lease: jobRetention, run: func(ctx context.Context) error { ran["retention"] = true; return nil }},
	}
	holdLease(t, conn, db, jobBilling)
	d.runSteps(t.Context(), t.Context(), steps)
	if ran["billing_push"] || !ran["retention"] {
		t.Fatalf("steps run: %v; want retention only", ran)
	}
	if n := testutil.ToFloat64(d.steps.WithLabelValues("billing_push", "skipped")); n != 1 {
		t.Fatalf("skipped billing_push counted %v times", n)
	}
	if n := testutil.ToFloat64(d.steps.WithLabelValues("retention", "success")); n != 1 {
		t.Fatalf("retention counted %v successes", n)
	}
}

// Two serve replicas share one fleet: the one holding the collect lease sweeps and runs the
// steps after the sweep; the other skips its sweep and those steps (it would spend the
// consumption budget twice).
func TestServe_SweepSkippedWhileAnotherReplicaSweeps(t *testing.T) {
	conn, db := chtest.New(t)
	d := newDaemon(chtest.Logger(t), nil, prometheus.NewRegistry()) // no collector: a sweep would panic
	d.leases = newJobLeasesOn(leasestore.New(conn, db, nil), 10*time.Second, chtest.Logger(t))
	ran := false
	d.after = []step{{name: "billing_push", run: func(context.Context) error { ran = true; return nil }}}
	holdLease(t, conn, db, jobCollect)
	d.cycle(t.Context(), t.Context())
	if ran {
		t.Fatal("the steps after the sweep ran although another replica holds the collect lease")
	}
	if _, err := d.sweep(t.Context()); !refused(err) {
		t.Fatalf("sweep while the collect lease is held: %v; want a refusal naming the holder", err)
	}
}
