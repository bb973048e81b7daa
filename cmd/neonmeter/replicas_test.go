package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// The replicas scene's timing: every replica ticks every replicaTick (its sweep must end within
// replicaDeadline), and a dead holder's lease lasts replicaTTL.
const (
	replicaTick     = 15 * time.Second
	replicaDeadline = 14 * time.Second
	replicaTTL      = 6 * time.Second
	// neonDelay stretches every Neon answer but consumption's, so an enforcement cycle lasts
	// long enough to be cut; stripeDelay does the same to billing's meter events.
	neonDelay   = 60 * time.Millisecond
	stripeDelay = 150 * time.Millisecond
	// envReplicaKills sets how many times each job's holder is killed (default 2); more kills
	// take a larger fleet and about a schedule tick each.
	envReplicaKills = "NEONMETER_TEST_REPLICA_KILLS"
)

// sentReq is one side effect a replica sent: a Stripe meter event or a Neon mutation.
type sentReq struct {
	slot         int
	at           time.Time // when it reached the service
	method, path string
	body         string
	status       int
}

// traffic keeps the side effects of every replica slot, in arrival order.
type traffic struct {
	mu   sync.Mutex
	reqs []sentReq
}

func (tr *traffic) add(r sentReq) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.reqs = append(tr.reqs, r)
}

func (tr *traffic) all() []sentReq {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.reqs)
}

// since counts slot's side effects that arrived at or after t.
func (tr *traffic) since(slot int, t time.Time) int {
	n := 0
	for _, r := range tr.all() {
		if r.slot == slot && !r.at.Before(t) {
			n++
		}
	}
	return n
}

// tap stands between one replica slot and a service: it records the side effects (isEffect)
// with their answers and delays the answers that delay says.
type tap struct {
	slot     int
	next     http.Handler
	rec      *traffic
	isEffect func(r *http.Request) bool
	delay    func(r *http.Request) time.Duration
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if tp.delay != nil {
		if d := tp.delay(r); d > 0 {
			time.Sleep(d)
		}
	}
	if !tp.isEffect(r) {
		tp.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	tp.next.ServeHTTP(sw, r)
	tp.rec.add(sentReq{slot: tp.slot, at: at, method: r.Method, path: r.URL.Path, body: string(body), status: sw.status})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func isMeterEvent(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/billing/meter_events"
}

func isNeonMutation(r *http.Request) bool {
	return r.Method == http.MethodPatch || r.Method == http.MethodPost
}

// replicaScene is three serve replicas on the test cluster with their leases in ZooKeeper, the
// simulator and the recording fake Stripe, each replica slot behind taps of its own.
type replicaScene struct {
	*billingServe
	sim       *sim.Sim
	projects  []string // the metered org's projects, all on the enforced plan
	leases    *zkstore.Store
	events    traffic    // meter events, through each slot's Stripe tap
	mutations traffic    // Neon mutations, through each slot's Neon tap
	env       []string   // the replicas' common settings
	slotEnv   [][]string // each slot's own (taps, listen address)
	replicas  []*served  // by slot: the process running there now
	pids      map[int]int
	retired   []*served // killed or stopped processes
}

func newReplicaScene(t *testing.T, kills int) *replicaScene {
	t.Helper()
	projects := 200 * max(1, (kills+1)/2)
	s, _ := simEnv(t, projects)
	addrs, root := leasetest.ZooKeeperRoot(t) // holds the cluster lock for the test
	// The replicas share the test cluster: a database migrated ON CLUSTER, reached through every
	// replica's address, its leases in the cluster's ZooKeeper.
	cl := chtest.ClusterEnv(t)
	conn, db := cl.New(t)
	t.Setenv("NEONMETER_CLICKHOUSE_ADDR", cl.AddrList())
	t.Setenv("NEONMETER_CLICKHOUSE_CLUSTER", cl.Name)
	t.Setenv("NEONMETER_CLICKHOUSE_DATABASE", db)
	const key = "sk_test_replicas_0123456789"
	sc := &replicaScene{sim: s, pids: map[int]int{}, billingServe: &billingServe{bin: binary(t), db: db, conn: conn, ttl: replicaTTL,
		stripe: &slowStripe{fake: stripefake.New(stripefake.Options{APIKey: key, Now: time.Now})}}}
	sc.billingServe.stripe.delay.Store(int64(stripeDelay))
	direct := httptest.NewServer(sc.billingServe.stripe)
	t.Cleanup(direct.Close)
	zs, err := zkstore.Open(zkstore.Options{Addrs: addrs, Root: root, Database: db, SessionTimeout: leasetest.ZooKeeperSession})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zs.Close)
	sc.leases = zs
	catalog := writeTemp(t, "plans.yaml", "version: 1\nplans:\n  - name: free\n  - name: pro\n"+
		"    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.5, suspend_timeout: 5m}\n"+
		"    limits:\n      compute_unit_seconds: {kind: hard, max: 1 CU-second}\n"+
		"    billing:\n      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}\n")
	settings := map[string]string{"NEONMETER_STRIPE_API_URL": direct.URL, "NEONMETER_STRIPE_API_KEY": key, "NEONMETER_PLANS_FILE": catalog,
		"NEONMETER_LOG_LEVEL": "info", "NEONMETER_LEASE_TTL": replicaTTL.String(), "NEONMETER_BILLING_CONCURRENCY": "4",
		"NEONMETER_LEASE_BACKEND": "zookeeper", "NEONMETER_ZOOKEEPER_ADDRS": strings.Join(addrs, ","), "NEONMETER_ZOOKEEPER_ROOT": root,
		"NEONMETER_ZOOKEEPER_SESSION_TIMEOUT": "3s", "NEONMETER_COLLECT_SCHEDULE": "@every " + replicaTick.String(),
		"NEONMETER_COLLECT_DEADLINE": replicaDeadline.String(),
		"NEONMETER_ENFORCEMENT_MODE": "enforce", "NEONMETER_ENFORCEMENT_GRACE": "0s", "NEONMETER_ENFORCEMENT_MAX_PERCENT": "100",
		"NEONMETER_SHUTDOWN_TIMEOUT": "5s"}
	for k, v := range settings {
		t.Setenv(k, v)
	}
	sc.env = os.Environ()
	sc.command(t, "migrate")
	sc.command(t, "collect", "--last", "24h") // the usage to bill and enforce; the replicas' sweeps then revise it
	sc.command(t, "billing", "setup", "--apply")
	sc.mapCustomers(t, key, direct.URL, 4)
	for slot := range 3 {
		sc.slotEnv = append(sc.slotEnv, sc.taps(t, slot))
	}
	return sc
}

// mapCustomers maps the launch org's projects, per of them to a Stripe customer, on plan pro.
func (sc *replicaScene) mapCustomers(t *testing.T, key, url string, per int) {
	t.Helper()
	stripeClient := accounts.NewStripeClient(accounts.StripeOptions{Key: key, URL: url})
	sc.projects = sc.sim.Orgs()[1].ProjectIDs // the org NEONMETER_NEON_ORG_ID names
	csv := "project_id,customer_id,plan,valid_from\n"
	for i := 0; i < len(sc.projects); i += per {
		cu, err := stripeClient.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("replicas-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range sc.projects[i:min(i+per, len(sc.projects))] {
			csv += fmt.Sprintf("%s,%s,pro,2020-01-01T00:00:00Z\n", p, cu.ID)
		}
	}
	sc.command(t, "accounts", "import", writeTemp(t, "accounts.csv", csv))
}

// taps starts slot's Stripe and Neon taps and returns the slot's own settings.
func (sc *replicaScene) taps(t *testing.T, slot int) []string {
	t.Helper()
	st := httptest.NewServer(&tap{slot: slot, next: sc.billingServe.stripe, rec: &sc.events, isEffect: isMeterEvent})
	t.Cleanup(st.Close)
	nt := httptest.NewServer(&tap{slot: slot, next: sc.sim.Handler(), rec: &sc.mutations, isEffect: isNeonMutation,
		delay: func(r *http.Request) time.Duration {
			if strings.Contains(r.URL.Path, "consumption") {
				return 0
			}
			return neonDelay
		}})
	t.Cleanup(nt.Close)
	return []string{"NEONMETER_STRIPE_API_URL=" + st.URL, "NEONMETER_NEON_API_URL=" + nt.URL + "/api/v2", "NEONMETER_LISTEN_ADDR=" + crashtest.FreeAddr(t)}
}

// start runs serve in slot (its first cycle at once when initial) and records its pid.
func (sc *replicaScene) start(t *testing.T, slot int, initial bool) {
	t.Helper()
	cmd := exec.Command(sc.bin, "serve", "--initial-sweep="+strconv.FormatBool(initial))
	cmd.Env = append(slices.Clone(sc.env), sc.slotEnv[slot]...)
	p := launchCmd(t, cmd, sc.db)
	for len(sc.replicas) <= slot {
		sc.replicas = append(sc.replicas, nil)
	}
	sc.replicas[slot] = p
	sc.pids[p.cmd.Process.Pid] = slot
}

// holder returns the slot whose process holds job's lease now, with the lease's status.
func (sc *replicaScene) holder(t *testing.T, job string) (int, lease.Status, bool) {
	t.Helper()
	st, err := sc.leases.Status(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if st.Free {
		return 0, st, false
	}
	slot, ok := sc.pids[st.Holder.PID]
	return slot, st, ok && sc.replicas[slot].cmd.Process.Pid == st.Holder.PID
}

// disruption is one thing done to a job's holder once it has sent enough under its lease.
type disruption struct {
	job  string
	stop bool // SIGSTOP past the TTL, then SIGCONT; otherwise kill -9
}

// TestReplicas_KilledAndPausedHolders is the must-show: three serve replicas share a
// database, their leases in ZooKeeper. The holder of billing is killed with SIGKILL in the
// middle of its push, the holder of enforcement in the middle of its cycle, each repeatedly,
// and the killed replica restarted; then the enforcement holder is stopped (SIGSTOP) until a
// standby took over, and continued. In the end: the lease was free within its TTL of each kill
// and taken over within a schedule tick of that; the lease history shows no two holders of a
// job at once, and every meter event and Neon mutation reached its service while its sender
// held the job's lease (so the stopped holder sent nothing after it resumed); Stripe holds
// exactly the ledger's value of every (customer, meter, hour), no identifier was sent with two
// values, and no Neon mutation was applied twice.
func TestReplicas_KilledAndPausedHolders(t *testing.T) {
	leasetest.ZooKeeperAddrs(t)
	kills := 2
	if v := os.Getenv(envReplicaKills); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: must be a positive number", envReplicaKills, v)
		}
		kills = n
	}
	sc := newReplicaScene(t, kills)
	begin := time.Now()
	for slot := range 3 {
		sc.start(t, slot, true)
	}
	var plan []disruption
	for range kills {
		plan = append(plan, disruption{job: jobBilling})
	}
	for range kills {
		plan = append(plan, disruption{job: jobEnforcement})
	}
	plan = append(plan, disruption{job: jobEnforcement, stop: true})
	var resumes []resume
	for i, d := range plan {
		if r, ok := sc.disrupt(t, i, d); ok {
			resumes = append(resumes, r)
		}
	}
	windowTo := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	sc.converge(t, time.Now())
	for _, p := range sc.replicas {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range sc.replicas {
		p.exit(t, 40*time.Second)
	}
	sc.checkHistory(t, resumes)
	sc.noneFailed(t, "at the end")
	sc.complete(t, windowTo)
	sc.mutationsOnce(t)
	t.Logf("%d disruptions, %d meter events and %d Neon mutations sent, %s in all", len(plan), len(sc.events.all()), len(sc.mutations.all()),
		time.Since(begin).Round(time.Second))
}

// resume is a holder that was stopped and continued: from at on, it must send nothing under
// the lease it had.
type resume struct {
	slot, pid int
	retired   int // its index in retired
	job       string
	at        time.Time
}

// disrupt waits until job's holder has sent a few side effects under its lease, then kills it
// (and restarts its slot) or stops it past its TTL and continues it once another replica took
// the job. It checks the lease was free within its TTL and taken over within a tick of that.
func (sc *replicaScene) disrupt(t *testing.T, i int, d disruption) (resume, bool) {
	t.Helper()
	effects, threshold := &sc.events, 20
	if d.job == jobEnforcement {
		effects, threshold = &sc.mutations, 4
	}
	var (
		slot int
		st   lease.Status
	)
	for deadline := time.Now().Add(3 * replicaTick); ; time.Sleep(50 * time.Millisecond) {
		var held bool
		slot, st, held = sc.holder(t, d.job)
		if held && effects.since(slot, st.Since) >= threshold {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disruption %d: no holder of %s sent %d side effects within %s\n%s", i, d.job, threshold, 3*replicaTick, sc.logs())
		}
	}
	p, pid := sc.replicas[slot], st.Holder.PID
	sig, what := syscall.SIGKILL, "killed"
	if d.stop {
		sig, what = syscall.SIGSTOP, "stopped"
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	t.Logf("disruption %d: %s the %s holder (slot %d, pid %d, generation %d) after %d side effects", i, what, d.job, slot, pid,
		st.Generation, effects.since(slot, st.Since))
	sc.retired = append(sc.retired, p)
	if !d.stop {
		<-p.done
		sc.start(t, slot, false) // the orchestrator replaces it; it waits for its first tick
	}
	free := sc.waitFree(t, d.job, st.Generation, at)
	next := sc.waitTaken(t, d.job, st.Generation, free)
	t.Logf("disruption %d: %s free %s after, taken %s after by slot %d", i, d.job, free.Sub(at).Round(time.Millisecond),
		next.Sub(at).Round(time.Millisecond), sc.pids[sc.mustStatus(t, d.job).Holder.PID])
	if !d.stop {
		return resume{}, false
	}
	time.Sleep(time.Second) // the new holder is at work
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	return resume{slot: slot, pid: pid, retired: len(sc.retired) - 1, job: d.job, at: time.Now()}, true
}

func (sc *replicaScene) mustStatus(t *testing.T, job string) lease.Status {
	t.Helper()
	st, err := sc.leases.Status(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFree returns when ZooKeeper first judged generation gen of job free after its holder was
// disrupted at at: its TTL after the holder's last heartbeat (which came before at), plus the
// backend's 0.5 s clock slack, and not before.
func (sc *replicaScene) waitFree(t *testing.T, job string, gen uint64, at time.Time) time.Time {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // a renewal the signal caught in flight has landed or never will
	last := sc.mustStatus(t, job).LastHeartbeat
	if last.After(at.Add(50*time.Millisecond)) || at.Sub(last) > replicaTTL/3+time.Second {
		t.Fatalf("%s: last heartbeat at %s, holder stopped at %s: it did not renew every TTL/3 until then", job,
			last.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
	}
	expires := last.Add(replicaTTL)
	for {
		st := sc.mustStatus(t, job)
		now := time.Now()
		if st.Free || st.Generation != gen {
			if now.Before(expires) {
				t.Fatalf("%s was free at %s, before its last heartbeat plus TTL (%s)", job, now.Format(time.RFC3339Nano), expires.Format(time.RFC3339Nano))
			}
			return now
		}
		if now.After(expires.Add(1500 * time.Millisecond)) {
			t.Fatalf("%s still held %s after its last heartbeat (TTL %s): %+v", job, now.Sub(last), replicaTTL, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTaken returns when a live replica took job over: within one schedule tick of the lease
// being free, plus the sweep and steps that replica runs before reaching the job's step.
func (sc *replicaScene) waitTaken(t *testing.T, job string, gen uint64, free time.Time) time.Time {
	t.Helper()
	limit := replicaTick + replicaDeadline + 10*time.Second
	for {
		st := sc.mustStatus(t, job)
		if st.Generation > gen {
			return st.Since
		}
		if time.Since(free) > limit {
			t.Fatalf("no replica took %s over within %s of it being free\n%s", job, limit, sc.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// converge waits until, after from, a billing push and an enforcement cycle each ran to their
// end, the enforcement cycle without mutating anything: the replicas have finished the work.
func (sc *replicaScene) converge(t *testing.T, from time.Time) {
	t.Helper()
	for deadline := time.Now().Add(6 * replicaTick); ; time.Sleep(500 * time.Millisecond) {
		pushed := len(sc.ranAfter(t, jobBilling, from)) > 0
		quiet := false
		for _, g := range sc.ranAfter(t, jobEnforcement, from) {
			quiet = quiet || sc.mutations.inWindow(g[0], g[1]) == 0
		}
		if pushed && quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete billing push (%v) and quiet enforcement cycle (%v) after the disruptions\n%s", pushed, quiet, sc.logs())
		}
	}
}

// ranAfter returns the [acquired, released] spans of job's generations taken after from and
// released since.
func (sc *replicaScene) ranAfter(t *testing.T, job string, from time.Time) [][2]time.Time {
	t.Helper()
	events, err := sc.leases.Events(t.Context(), job, 1000)
	if err != nil {
		t.Fatal(err)
	}
	acquired := map[uint64]time.Time{}
	var out [][2]time.Time
	for i := len(events) - 1; i >= 0; i-- { // oldest first
		switch e := events[i]; e.Kind {
		case lease.EventAcquired:
			acquired[e.Generation] = e.At
		case lease.EventReleased:
			if a, ok := acquired[e.Generation]; ok && a.After(from) {
				out = append(out, [2]time.Time{a, e.At})
			}
		}
	}
	return out
}

func (tr *traffic) inWindow(from, to time.Time) int {
	n := 0
	for _, r := range tr.all() {
		if !r.at.Before(from) && !r.at.After(to) {
			n++
		}
	}
	return n
}

// checkHistory reads each job's lease history from ZooKeeper: generations 1..n, each taken once
// and only after the one before had ended (released, or its last heartbeat plus TTL); and every
// meter event and Neon mutation arrived while its sender held the job's lease. A stopped and
// continued holder thus sent nothing after it resumed until it took the lease anew.
func (sc *replicaScene) checkHistory(t *testing.T, resumes []resume) {
	t.Helper()
	slotOf := func(pid int) int {
		if s, ok := sc.pids[pid]; ok {
			return s
		}
		return -1
	}
	for _, job := range leaseJobs() {
		spans := sc.spans(t, job)
		switch job {
		case jobBilling:
			sc.effectsWithin(t, job, &sc.events, spans, slotOf)
		case jobEnforcement:
			sc.effectsWithin(t, job, &sc.mutations, spans, slotOf)
		}
	}
	for _, r := range resumes {
		if !strings.Contains(sc.retired[r.retired].output(), "lease lost: stopping before any further side effect") {
			t.Errorf("the stopped %s holder (pid %d) never noticed it lost its lease after it resumed", r.job, r.pid)
		}
		effects := &sc.events
		if r.job == jobEnforcement {
			effects = &sc.mutations
		}
		next := time.Now()
		for _, sp := range sc.spans(t, r.job) {
			if sp.pid == r.pid && sp.from.After(r.at) {
				next = sp.from
				break
			}
		}
		for _, e := range effects.all() {
			if e.slot == r.slot && !e.at.Before(r.at) && e.at.Before(next) {
				t.Errorf("the stopped %s holder (pid %d) sent %s %s at %s, after it resumed at %s", r.job, r.pid, e.method, e.path,
					e.at.Format(time.RFC3339Nano), r.at.Format(time.RFC3339Nano))
			}
		}
	}
}

// span is one generation of a job's lease: who held it, from its acquisition to its end.
type span struct {
	gen      uint64
	pid      int
	from, to time.Time
}

// spans rebuilds job's generations from its history and checks they never overlap.
func (sc *replicaScene) spans(t *testing.T, job string) []span {
	t.Helper()
	events, err := sc.leases.Events(t.Context(), job, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	spans, problems := spansOf(events, time.Now())
	for _, p := range problems {
		t.Errorf("%s: %s", job, p)
	}
	return spans
}

// spansOf rebuilds a job's generations from its history (newest first, as Events returns it),
// the last one open until now, and says where the history shows two holders at once or is out
// of order.
func spansOf(events []lease.Event, now time.Time) (out []span, problems []string) {
	events = slices.Clone(events)
	slices.Reverse(events) // oldest first
	for _, e := range events {
		switch e.Kind {
		case lease.EventAcquired:
			if want := uint64(len(out) + 1); e.Generation != want {
				problems = append(problems, fmt.Sprintf("generation %d acquired where %d was next", e.Generation, want))
			}
			if n := len(out); n > 0 {
				prev := &out[n-1]
				if prev.to.IsZero() {
					prev.to = e.PreviousEnd // expired: its last heartbeat plus TTL
				}
				if e.PreviousEnd.IsZero() || !prev.to.Equal(e.PreviousEnd) || e.At.Before(e.PreviousEnd) {
					problems = append(problems, fmt.Sprintf("generation %d taken at %s, but generation %d held until %s (recorded end %s): two holders at once",
						e.Generation, e.At.Format(time.RFC3339Nano), prev.gen, prev.to.Format(time.RFC3339Nano), e.PreviousEnd.Format(time.RFC3339Nano)))
				}
			}
			out = append(out, span{gen: e.Generation, pid: e.Holder.PID, from: e.At})
		case lease.EventReleased:
			if n := len(out); n == 0 || out[n-1].gen != e.Generation || !out[n-1].to.IsZero() {
				problems = append(problems, fmt.Sprintf("release of generation %d out of order", e.Generation))
				continue
			}
			out[len(out)-1].to = e.At
		}
	}
	if n := len(out); n > 0 && out[n-1].to.IsZero() {
		out[n-1].to = now
	}
	return out, problems
}

// effectsWithin checks every side effect of job arrived inside a generation held by its sender.
func (sc *replicaScene) effectsWithin(t *testing.T, job string, effects *traffic, spans []span, slotOf func(int) int) {
	t.Helper()
	for _, e := range outside(effects.all(), spans, slotOf) {
		t.Errorf("%s: slot %d sent %s %s at %s while it held no %s lease", job, e.slot, e.method, e.path, e.at.Format(time.RFC3339Nano), job)
	}
}

// outside returns the side effects that arrived while their sender's slot held none of spans.
func outside(effects []sentReq, spans []span, slotOf func(pid int) int) []sentReq {
	const stamp = time.Millisecond // ZooKeeper stamps whole milliseconds
	var out []sentReq
	for _, e := range effects {
		held := slices.ContainsFunc(spans, func(sp span) bool {
			return slotOf(sp.pid) == e.slot && !e.at.Before(sp.from.Add(-stamp)) && !e.at.After(sp.to.Add(stamp))
		})
		if !held {
			out = append(out, e)
		}
	}
	return out
}

// mutationsOnce checks no Neon mutation (method, path, body) was applied twice.
func (sc *replicaScene) mutationsOnce(t *testing.T) {
	t.Helper()
	seen := map[string]sentReq{}
	for _, r := range sc.mutations.all() {
		if r.status/100 != 2 {
			continue
		}
		k := r.method + " " + r.path + " " + r.body
		if first, ok := seen[k]; ok {
			t.Errorf("Neon mutation applied twice: %s (slot %d at %s, slot %d at %s)", k, first.slot, first.at.Format(time.RFC3339Nano),
				r.slot, r.at.Format(time.RFC3339Nano))
		}
		seen[k] = r
	}
	if len(seen) == 0 {
		t.Error("no Neon mutation was applied: the scene enforces nothing")
	}
}

// logs returns the tail of every replica's stderr, for a failure's message.
func (sc *replicaScene) logs() string {
	var b strings.Builder
	for slot, p := range sc.replicas {
		s := p.output()
		fmt.Fprintf(&b, "--- slot %d (pid %d):\n%s\n", slot, p.cmd.Process.Pid, s[max(0, len(s)-3000):])
	}
	return b.String()
}

// output returns what the process wrote to stderr so far.
func (p *served) output() string {
	lw := p.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return p.stderr.String()
}

// The replicas test's checks catch what they are for: two holders at once in the history, a
// generation skipped, and a side effect sent while its sender held no lease.
func TestReplicaChecks_CatchOverlapsAndStraySends(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	h := func(pid int) lease.Holder { return lease.Holder{Host: "h", PID: pid, RunID: "r"} }
	// Newest first, as Events returns them: 1 held by pid 10, released at 5; 2 by pid 20 from 6,
	// expired (last heartbeat 8, TTL 6, so until 14); 3 by pid 30 from 14.6.
	good := []lease.Event{
		{At: at(14.6), Generation: 3, Kind: lease.EventAcquired, Holder: h(30), PreviousEnd: at(14)},
		{At: at(6), Generation: 2, Kind: lease.EventAcquired, Holder: h(20), PreviousEnd: at(5)},
		{At: at(5), Generation: 1, Kind: lease.EventReleased, Holder: h(10)},
		{At: at(1), Generation: 1, Kind: lease.EventAcquired, Holder: h(10)},
	}
	spans, problems := spansOf(good, at(20))
	if len(problems) != 0 || len(spans) != 3 || !spans[1].to.Equal(at(14)) || !spans[2].to.Equal(at(20)) {
		t.Fatalf("a clean history: spans %+v, problems %v", spans, problems)
	}
	overlap := slices.Clone(good)
	overlap[0].At = at(13) // taken before generation 2 ran out
	if _, problems := spansOf(overlap, at(20)); len(problems) != 1 || !strings.Contains(problems[0], "two holders at once") {
		t.Errorf("an overlap: %v", problems)
	}
	skipped := slices.Clone(good)
	skipped[0].Generation = 4
	if _, problems := spansOf(skipped, at(20)); len(problems) != 1 || !strings.Contains(problems[0], "where 3 was next") {
		t.Errorf("a skipped generation: %v", problems)
	}
	slotOf := func(pid int) int { return pid / 10 } // pid 10 ran in slot 1, 20 in slot 2, 30 in slot 3
	effects := []sentReq{
		{slot: 1, at: at(4.9)},  // inside generation 1
		{slot: 2, at: at(13.9)}, // inside generation 2, before it ran out
		{slot: 1, at: at(5.5)},  // slot 1 after its release: stray
		{slot: 2, at: at(14.5)}, // slot 2 after its lease ran out: stray
		{slot: 3, at: at(10)},   // slot 3 before it took the lease: stray
	}
	stray := outside(effects, spans, slotOf)
	if len(stray) != 3 || stray[0].at != at(5.5) || stray[1].at != at(14.5) || stray[2].at != at(10) {
		t.Errorf("stray side effects found: %+v, want the last three", stray)
	}
}
