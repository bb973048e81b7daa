package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/simclock"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// catalog is the soak's plan catalog: free and launch suspend at a hard compute limit, pro
// throttles at a soft one and bills the overage; launch and pro bill through Billing Meters.
const catalog = `version: 1
plans:
  - name: free
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 0.25, suspend_timeout: 5m}
    limits:
      compute_unit_seconds: {kind: hard, max: 30 CU-hour}
  - name: launch
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 2, suspend_timeout: 5m}
    limits:
      compute_unit_seconds: {kind: hard, max: 150 CU-hour}
    billing:
      compute_unit_seconds:          {meter: neon_compute, unit: CU-hour}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
  - name: pro
    neon: {autoscaling_min_cu: 0.25, autoscaling_max_cu: 4, suspend_timeout: 10m}
    limits:
      compute_unit_seconds: {kind: soft, max: 400 CU-hour}
    billing:
      compute_unit_seconds:          {meter: neon_compute, unit: CU-hour}
      root_branch_bytes_month:       {meter: neon_storage_root, unit: MB-month}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
`

// planNames are the catalog's plans, in the order the mapping draws them.
var planNames = [...]string{"free", "launch", "pro"}

// perCustomer is how many projects one Stripe customer owns: billing's work (and so a cycle's
// real time) grows with customers × meters × hours, not with projects.
const perCustomer = 20

// owner is who owns a project and on which plan, from when.
type owner struct {
	customer, plan string
	from           time.Time
}

// world is everything the soak runs besides the replicas: the simulator and the fake Stripe on
// loopback, the shared clock, the database, and what the soak did to them.
type world struct {
	o       options
	log     io.Writer
	late    *lateClock
	clock   simclock.Clock
	sim     *sim.Sim
	stripe  *stripefake.Server
	neonURL string // the simulator behind the mutation tap
	stripeU string
	apiKey  string
	stripeK string
	conn    driver.Conn
	dir     string
	servers []*http.Server

	orgs      []sim.Org    // collected: every org but free (Neon answers 403 there)
	outage    atomic.Bool  // Stripe answers 503 to everything (stripeTap)
	refused   atomic.Int64 // requests the outages refused
	mutations mutationLog

	mu       sync.Mutex
	owners   map[string][]owner // project → its owners, oldest first
	custs    []string           // every customer created
	unmapped []string           // projects nobody owns yet
	deleted  map[string]time.Time

	overLimit int      // projects over a limit at the end (checkEnforcement)
	revisions []window // the hours each Revise changed
}

// lateClock is the simulator's clock: it reads start until the soak anchors it, so the set-up's
// real time does not eat into the simulated span.
type lateClock struct {
	start time.Time
	c     atomic.Pointer[simclock.Clock]
}

func (l *lateClock) Now() time.Time {
	if c := l.c.Load(); c != nil {
		return c.Now()
	}
	return l.start
}

// mutation is one Neon mutation a replica or an operator sent, with Neon's answer.
type mutation struct {
	at                 time.Time
	method, path, body string
	status             int
}

type mutationLog struct {
	mu  sync.Mutex
	all []mutation
}

func (l *mutationLog) add(m mutation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, m)
}

func (l *mutationLog) list() []mutation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// newWorld builds the fleet, the fake Stripe and their loopback servers and connects to
// ClickHouse; the clock waits for anchor.
func newWorld(ctx context.Context, o options, log io.Writer) (*world, error) {
	w := &world{o: o, log: log, late: &lateClock{start: o.Start}, apiKey: rand.Text(), stripeK: "sk_test_soak_" + rand.Text(),
		owners: map[string][]owner{}, deleted: map[string]time.Time{}, dir: o.LogDir}
	s, err := sim.New(sim.Config{Projects: o.Projects, Seed: o.Seed, Now: w.late.Now, RateNow: w.late.Now, APIKey: w.apiKey,
		ConsumptionRatePerMin: o.Budget, ConsumptionBurst: 10, GeneralRatePerMin: 3000, GeneralBurst: 50,
		HistoryStart: o.Start.Add(-24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	w.sim = s
	for _, so := range s.Orgs() {
		if so.Plan != "free" {
			w.orgs = append(w.orgs, so)
		}
	}
	w.stripe = stripefake.New(stripefake.Options{APIKey: w.stripeK, Now: w.late.Now})
	if w.neonURL, err = w.listen(&neonTap{next: s.Handler(), log: &w.mutations, now: time.Now}); err != nil {
		return nil, err
	}
	w.neonURL += "/api/v2"
	if w.stripeU, err = w.listen(stripeTap{next: w.stripe, outage: &w.outage, refused: &w.refused}); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if w.conn, err = schema.Open(cctx, schema.Options{Addr: o.ClickHouse}); err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.ClickHouse, err)
	}
	return w, nil
}

// listen serves h on a loopback port and returns its URL.
func (w *world) listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	w.servers = append(w.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// anchor starts the shared clock at the span's start now.
func (w *world) anchor() error {
	c, err := simclock.New(w.o.Start, time.Now(), w.o.Hour)
	if err != nil {
		return err
	}
	w.clock = c
	w.late.c.Store(&c)
	return nil
}

func (w *world) close() {
	for _, s := range w.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	if w.conn != nil {
		if !w.o.KeepDB {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := w.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+w.o.Database); err != nil {
				fmt.Fprintf(w.log, "soak: drop database %s: %v\n", w.o.Database, err)
			}
			cancel()
		}
		w.conn.Close()
	}
}

// neonTap records every Neon mutation with its answer on its way to the simulator.
type neonTap struct {
	next http.Handler
	log  *mutationLog
	now  func() time.Time
}

func (t *neonTap) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		t.next.ServeHTTP(rw, r)
		return
	}
	at := t.now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	t.next.ServeHTTP(sw, r)
	t.log.add(mutation{at: at, method: r.Method, path: r.URL.Path, body: string(body), status: sw.status})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// mapInitial creates the customers and maps most projects of the v2 orgs, perCustomer to a
// customer, on plans drawn from the seed; a tenth stays unmapped for new customers later.
// It returns the accounts CSV.
func (w *world) mapInitial(ctx context.Context) (string, error) {
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: w.stripeK, URL: w.stripeU})
	var csv strings.Builder
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	since := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, org := range w.orgs {
		if org.Legacy {
			continue // the legacy org is collected, not billed
		}
		ids := org.ProjectIDs
		for i := 0; i < len(ids); i += perCustomer {
			group := ids[i:min(i+perCustomer, len(ids))]
			if i/perCustomer%10 == 9 {
				w.unmapped = append(w.unmapped, group...)
				continue
			}
			cu, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprintf("soak-%s-%d", org.ID, i))})
			if err != nil {
				return "", fmt.Errorf("create a customer in the fake Stripe: %w", err)
			}
			w.custs = append(w.custs, cu.ID)
			plan := planNames[mix(uint64(w.o.Seed), uint64(i))%uint64(len(planNames))]
			for _, p := range group {
				w.owners[p] = []owner{{customer: cu.ID, plan: plan, from: since}}
				fmt.Fprintf(&csv, "%s,%s,%s,%s\n", p, cu.ID, plan, since.Format(time.RFC3339))
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	return csv.String(), nil
}

// writeFile writes a file of the run's directory and returns its path.
func (w *world) writeFile(name, content string) (string, error) {
	p := filepath.Join(w.dir, name)
	return p, os.WriteFile(p, []byte(content), 0o600)
}

// mix is a seeded hash for the soak's choices.
func mix(a, b uint64) uint64 {
	x := a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	return x ^ x>>29
}
