package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/internal/simclock"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// provisional is how long the simulator, like Neon, may still revise an hour after its end:
// only collection after it is final.
const provisional = 2 * time.Hour

// org is one organization the children collect.
type org struct {
	id       string
	endpoint string // v2 or legacy
	projects []string
}

// result is everything one benchmark run measured.
type result struct {
	opts             options
	clock            simclock.Clock
	dayStart, dayEnd time.Time // simulated
	ended            time.Time // simulated end of the last cycle
	settled          time.Time // simulated time the day was complete and final; zero if never
	database, logDir string
	orgs             []org
	samples          []sample
	children         []childRun
	verify           verifyResult
	started          time.Time     // real
	setup, loop      time.Duration // real
	verifyTime       time.Duration
	harnessRSS       int64
}

// benchRun is the state of one run.
type benchRun struct {
	o      options
	log    io.Writer
	sim    *sim.Sim
	late   *lateClock
	clock  simclock.Clock
	orgs   []org
	sorted map[string][]string // each org's project ids, sorted
	chunk  int                 // projects per verification query
	conn   driver.Conn
	apiURL string
	apiKey string
	res    *result
	logF   *os.File
	// finalCycle is the start of the first budgeted cycle after the day's last hour became final.
	finalCycle time.Time

	mu      sync.Mutex // guards samples
	samples []sample
}

// lateClock is the simulator's clock: it reads start until the benchmark anchors it, so the
// setup's real time does not eat into the simulated day.
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

// bench runs one benchmark in one mode: setup, cycles, verification.
func bench(ctx context.Context, o options, log io.Writer) (*result, error) {
	b, err := setup(ctx, o, log)
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	stopServer, err := b.serve()
	if err != nil {
		return nil, err
	}
	defer stopServer()
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	loopStart := time.Now()
	b.addSample(sample{at: b.res.dayStart, stats: b.sim.Stats(), active: freshness{worst: -1}})
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); b.sampleHours(sctx) }()
	err = b.cycles(ctx)
	stopSampling()
	<-sampled
	b.addSample(b.takeSample(ctx, b.clock.Now()))
	b.res.loop = time.Since(loopStart)
	if err != nil {
		return nil, err
	}
	vStart := time.Now()
	b.res.verify, err = b.verifyDay(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	b.res.verifyTime = time.Since(vStart)
	b.res.samples = b.samples
	b.res.harnessRSS = selfMaxRSS()
	return b.res, nil
}

// setup fills defaults, builds the simulator on a clock that waits for its anchor and connects
// to ClickHouse.
func setup(ctx context.Context, o options, log io.Writer) (*benchRun, error) {
	started := time.Now()
	if o.Start.IsZero() {
		back := time.Duration(o.Hours)*time.Hour + o.Settle.Truncate(time.Hour) + 3*time.Hour
		o.Start = started.UTC().Truncate(time.Hour).Add(-back)
	}
	if o.Database == "" {
		o.Database = "fleetbench_" + strings.ToLower(rand.Text()[:12])
	}
	if o.LogDir == "" {
		dir, err := os.MkdirTemp("", "fleetbench-")
		if err != nil {
			return nil, err
		}
		o.LogDir = dir
	}
	b := &benchRun{o: o, log: log, late: &lateClock{start: o.Start}, apiKey: rand.Text() + rand.Text()}
	b.res = &result{opts: o, database: o.Database, logDir: o.LogDir, started: started,
		dayStart: o.Start, dayEnd: o.Start.Add(time.Duration(o.Hours) * time.Hour)}
	fmt.Fprintf(log, "fleetbench %s: building a fleet of %d projects\n", o.Mode, o.Projects)
	s, err := sim.New(sim.Config{
		Projects: o.Projects, Seed: o.Seed, Now: b.late.Now, RateNow: b.late.Now, APIKey: b.apiKey,
		ActiveShare: o.ActiveShare, ConsumptionRatePerMin: o.Budget, ConsumptionBurst: o.Burst,
		GeneralRatePerMin: o.GeneralRate,
	})
	if err != nil {
		return nil, err
	}
	b.sim = s
	for _, so := range s.Orgs() {
		if so.Plan == "free" { // no consumption history on Neon's free plan (403)
			continue
		}
		ep := "v2"
		if so.Legacy {
			ep = "legacy"
		}
		b.orgs = append(b.orgs, org{id: so.ID, endpoint: ep, projects: so.ProjectIDs})
	}
	b.res.orgs = b.orgs
	b.sorted, b.chunk = sortedIDs(b.orgs), verifyChunk
	if b.logF, err = os.Create(filepath.Join(o.LogDir, o.Mode+"-children.log")); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if b.conn, err = schema.Open(cctx, schema.Options{Addr: o.ClickHouse}); err != nil {
		b.logF.Close()
		return nil, err
	}
	return b, nil
}

// serve serves the simulator's API on a loopback port until the returned function is called.
func (b *benchRun) serve() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	b.apiURL = "http://" + ln.Addr().String() + "/api/v2"
	srv := &http.Server{Handler: b.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// prepare checks the binary, migrates the fresh database and anchors the shared clock.
func (b *benchRun) prepare(ctx context.Context) error {
	var exists uint64
	if err := b.conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", b.o.Database).Scan(&exists); err != nil {
		return fmt.Errorf("clickhouse %s: %w", b.o.ClickHouse, err)
	}
	if exists > 0 {
		return fmt.Errorf("database %s exists already; fleetbench only uses a fresh one", b.o.Database)
	}
	// A provisional spec for the checks; the real anchor is set just before the first cycle.
	c, err := simclock.New(b.o.Start, time.Now(), b.o.Hour)
	if err != nil {
		return err
	}
	b.clock = c
	if err := b.checkBinary(ctx); err != nil {
		return err
	}
	if r := b.runChild(ctx, "migrate", []string{"migrate"}, b.env()); r.err != nil {
		return fmt.Errorf("%s migrate: %w\n%s", b.o.Bin, r.err, r.tail)
	}
	anchored, err := simclock.New(b.o.Start, time.Now(), b.o.Hour)
	if err != nil {
		return err
	}
	b.clock = anchored
	b.res.clock, b.res.setup = anchored, anchored.Anchor().Sub(b.res.started)
	b.late.c.Store(&anchored)
	fmt.Fprintf(b.log, "fleetbench %s: clock %s, API %s, database %s, logs %s\n", b.o.Mode, anchored, b.apiURL, b.o.Database, b.o.LogDir)
	return nil
}

// cleanup drops the database (unless kept) and closes what setup opened.
func (b *benchRun) cleanup() {
	if !b.o.KeepDB {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+b.o.Database); err != nil {
			fmt.Fprintf(b.log, "fleetbench: drop database %s: %v\n", b.o.Database, err)
		}
	}
	b.conn.Close()
	b.logF.Close()
}

// cycles runs collection cycles from the day's start until the day is complete and final, or
// the settle time has passed after it.
func (b *benchRun) cycles(ctx context.Context) error {
	limit := b.res.dayEnd.Add(b.o.Settle)
	began := time.Now()
	last := map[string]time.Time{}  // fullsweep: each org's last window end
	swept := map[string]time.Time{} // fullsweep: each org's last successful sweep start
	for _, o := range b.orgs {
		last[o.id] = b.res.dayStart // the first sweep of every org covers the day's start
	}
	for {
		start := b.clock.Now()
		if !start.Before(limit) || (b.o.MaxReal > 0 && time.Since(began) >= b.o.MaxReal) {
			b.res.ended = start
			return nil
		}
		var err error
		if b.o.Mode == modeFullsweep {
			err = b.fullSweep(ctx, last, swept)
		} else {
			err = b.budgetedCycle(ctx)
		}
		if err != nil {
			return err
		}
		done, err := b.dayDone(ctx, start, swept)
		if err != nil {
			return err
		}
		if done {
			b.res.ended, b.res.settled = b.clock.Now(), b.clock.Now()
			return nil
		}
		if !sleepUntil(ctx, b.clock.RealAt(start.Add(b.o.Cycle))) {
			return ctx.Err()
		}
	}
}

// fullSweep runs today's collection: one `collect --from --to` per org over every project,
// from the previous window's end minus the lookback to the last complete hour.
func (b *benchRun) fullSweep(ctx context.Context, last, swept map[string]time.Time) error {
	for _, o := range b.orgs {
		start := b.clock.Now()
		to := start.Truncate(time.Hour)
		from := maxTime(last[o.id].Add(-b.o.Lookback), to.Add(-167*time.Hour))
		if !from.Before(to) {
			continue
		}
		args := []string{"collect", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
		r := b.runChild(ctx, "collect "+o.id, args, b.env("NEONMETER_NEON_ORG_ID="+o.id, "NEONMETER_NEON_CONSUMPTION_API="+o.endpoint))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.err == nil {
			last[o.id], swept[o.id] = to, start
		}
	}
	return nil
}

// budgetedCycle runs `neonmeter collect` without a window: one budgeted cycle over every org.
func (b *benchRun) budgetedCycle(ctx context.Context) error {
	ids := ""
	for i, o := range b.orgs {
		if i > 0 {
			ids += ","
		}
		ids += o.id + ":" + o.endpoint
	}
	b.runChild(ctx, "collect (budgeted)", []string{"collect"}, b.env("NEONMETER_NEON_ORG_IDS="+ids))
	return ctx.Err()
}

// dayDone reports whether every hour of the day is collected as final. fullsweep: each org had
// a successful sweep starting after the day's last hour became final. budgeted: every project
// has progress through the day's end, written by a cycle that started after that hour became
// final (its call re-read the provisional hours: docs/collector.md).
func (b *benchRun) dayDone(ctx context.Context, cycleStart time.Time, swept map[string]time.Time) (bool, error) {
	final := b.res.dayEnd.Add(provisional)
	if b.o.Mode == modeFullsweep {
		for _, o := range b.orgs {
			if swept[o.id].Before(final) {
				return false, nil
			}
		}
		return true, nil
	}
	if cycleStart.Before(final) {
		return false, nil
	}
	if b.finalCycle.IsZero() {
		b.finalCycle = cycleStart
	}
	tiers, err := b.progress(ctx)
	if err != nil {
		return false, nil // no progress readable (yet): run until the settle limit
	}
	var covered, fleet uint64
	for _, t := range tiers {
		if t.oldest.Before(b.res.dayEnd) || t.updated.Before(b.finalCycle) {
			return false, nil
		}
		covered += t.projects
	}
	for _, o := range b.orgs {
		fleet += uint64(len(o.projects))
	}
	return covered >= fleet, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleepUntil waits until the real instant t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
