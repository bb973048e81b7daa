package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/neonmeter/neonmeter/internal/lease"
	leasestore "github.com/neonmeter/neonmeter/internal/lease/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// tally counts what the run did: events applied by kind, and their outcomes.
type tally struct {
	mu      sync.Mutex
	applied map[Kind]int
	notes   map[string]int
}

func (t *tally) add(k Kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.applied[k]++
}

func (t *tally) note(what string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.notes[what] += n
}

// window is a fault active over a simulated span.
type window struct {
	kind     Kind
	from, to time.Time
}

// conductor applies the schedule's events at their simulated times.
type conductor struct {
	w       *world
	fl      *fleet
	t       *tally
	leases  lease.Inspector
	windows []window
	faults  sim.Faults   // the simulator's, as last set
	outage  *atomic.Bool // Stripe answers 503 to everything
	bg      sync.WaitGroup
}

// stripeTap refuses every request with Stripe's 503 while an outage lasts.
type stripeTap struct {
	next    http.Handler
	outage  *atomic.Bool
	refused *atomic.Int64
}

func (t stripeTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t.outage.Load() {
		t.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"type":"api_error","message":"Stripe is unavailable (soak outage)."}}`)
		return
	}
	t.next.ServeHTTP(w, r)
}

func newConductor(w *world, fl *fleet, outage *atomic.Bool) *conductor {
	return &conductor{w: w, fl: fl, outage: outage, leases: leasestore.New(w.conn, w.o.Database, nil),
		t: &tally{applied: map[Kind]int{}, notes: map[string]int{}}}
}

// run applies events until the simulated time until, keeping the fault windows current.
func (d *conductor) run(ctx context.Context, events []Event, until time.Time) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		now := d.w.clock.Now()
		for ; next < len(events) && !events[next].At.After(now); next++ {
			if err := d.apply(ctx, events[next]); err != nil {
				return fmt.Errorf("%s: %w", events[next], err)
			}
		}
		d.setFaults(now)
		if !now.Before(until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// apply does one event (in the background when it lasts).
func (d *conductor) apply(ctx context.Context, e Event) error {
	w := d.w
	d.t.add(e.Kind)
	switch e.Kind {
	case KindKill:
		return d.fl.kill(d.fl.replicas[e.Replica%len(d.fl.replicas)])
	case KindStop:
		d.background(func() { d.stopHolder(ctx, e.Job) })
	case KindNeon429, KindNeon5xx, KindRepeatPage, KindStripeDown:
		d.windows = append(d.windows, window{kind: e.Kind, from: e.At, to: e.At.Add(e.Span)})
	case KindStripeLost:
		w.stripe.Inject(stripefake.Fault{Method: http.MethodPost, Path: "/v1/billing/meter_events", Times: e.N, Drop: stripefake.DropAfter})
	case KindManualPush, KindManualEnf:
		args := []string{"billing", "push", "--wait"}
		if e.Kind == KindManualEnf {
			args = []string{"enforce", "--wait"}
		}
		d.background(func() {
			code, err := d.fl.command(ctx, args...)
			d.t.note(fmt.Sprintf("%s: exit %d", strings.Join(args, " "), code), 1)
			if err != nil {
				d.t.note(fmt.Sprintf("%s: %v", strings.Join(args, " "), err), 1)
			}
		})
	case KindRevise:
		at := w.clock.Now()
		d.t.note("values revised", w.sim.Revise(e.Span))
		w.mu.Lock()
		w.revisions = append(w.revisions, window{kind: KindRevise, from: at.Truncate(time.Hour).Add(-e.Span), to: at.Truncate(time.Hour)})
		w.mu.Unlock()
	case KindPlanChange, KindDelete, KindNewCustomer:
		return d.changeWorld(ctx, e)
	case KindCHDown:
		return fmt.Errorf("a ClickHouse replica cannot be stopped: the soak runs on one server (--cluster is not implemented yet)")
	}
	return nil
}

func (d *conductor) background(fn func()) {
	d.bg.Add(1)
	go func() { defer d.bg.Done(); fn() }()
}

// setFaults makes the simulator's faults and Stripe's outage those of the windows open now.
func (d *conductor) setFaults(now time.Time) {
	var f sim.Faults
	down := false
	for _, win := range d.windows {
		if now.Before(win.from) || !now.Before(win.to) {
			continue
		}
		switch win.kind {
		case KindNeon429:
			f.Rate429 = 0.6
		case KindNeon5xx:
			f.Rate500, f.Rate503 = 0.2, 0.2
		case KindRepeatPage:
			f.RepeatPageRate = 0.3
		case KindStripeDown:
			down = true
		}
	}
	f.Seed = d.w.o.Seed
	if f != d.faults { // setting them restarts their random sequence
		d.w.sim.SetFaults(f)
		d.faults = f
	}
	d.outage.Store(down)
}

// stopHolder stops the process holding job's lease (SIGSTOP) for twice the lease's TTL, so a
// standby takes over, then continues it. Without a holder within a few seconds it stops the
// first replica, which then holds nothing.
func (d *conductor) stopHolder(ctx context.Context, job string) {
	var target *replica
	for deadline := time.Now().Add(10 * time.Second); target == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st, err := d.leases.Status(ctx, job)
		if err != nil || st.Free {
			continue
		}
		for _, r := range d.fl.replicas {
			if r.pid() == st.Holder.PID {
				target = r
			}
		}
	}
	if target == nil {
		d.t.note("sigstop found no holder of "+job+"; stopped replica 0", 1)
		target = d.fl.replicas[0]
	} else {
		d.t.note("sigstop of a "+job+" holder", 1)
	}
	pid := target.pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(2 * leaseTTL):
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// changeWorld changes owners or deletes projects, as the event says, choosing the projects
// from its seed.
func (d *conductor) changeWorld(ctx context.Context, e Event) error {
	w := d.w
	now := w.clock.Now().Truncate(time.Hour) // from the hour in progress (an import refuses a future valid_from)
	w.mu.Lock()
	mapped := make([]string, 0, len(w.owners))
	for p := range w.owners {
		if _, gone := w.deleted[p]; !gone {
			mapped = append(mapped, p)
		}
	}
	sort.Strings(mapped)
	var csv strings.Builder
	csv.WriteString("project_id,customer_id,plan,valid_from\n")
	changed := map[string]bool{} // customers changed by this event: one change each
	for i := range e.N {
		k := mix(e.Seed, uint64(i))
		switch e.Kind {
		case KindPlanChange:
			p := mapped[k%uint64(len(mapped))]
			cur := w.owners[p][len(w.owners[p])-1]
			if changed[cur.customer] {
				continue
			}
			changed[cur.customer] = true
			plan := planNames[(indexOf(cur.plan)+1+int(k>>32%2))%len(planNames)]
			// The whole customer changes plan, as a subscription does.
			for q, os := range w.owners {
				if last := os[len(os)-1]; last.customer == cur.customer && last.plan == cur.plan {
					w.owners[q] = append(os, owner{customer: cur.customer, plan: plan, from: now})
					fmt.Fprintf(&csv, "%s,%s,%s,%s\n", q, cur.customer, plan, now.Format(time.RFC3339))
				}
			}
		case KindNewCustomer:
			if len(w.unmapped) == 0 {
				continue
			}
			p := w.unmapped[0]
			w.unmapped = w.unmapped[1:]
			cus := w.custs[k%uint64(len(w.custs))]
			plan := planNames[k>>32%uint64(len(planNames))]
			w.owners[p] = []owner{{customer: cus, plan: plan, from: now}}
			fmt.Fprintf(&csv, "%s,%s,%s,%s\n", p, cus, plan, now.Format(time.RFC3339))
		case KindDelete:
			p := mapped[k%uint64(len(mapped))]
			if _, gone := w.deleted[p]; !gone {
				w.deleted[p] = w.clock.Now()
				w.sim.DeleteProject(p)
				d.t.note("projects deleted", 1)
			}
		}
	}
	w.mu.Unlock()
	if e.Kind == KindDelete {
		return nil
	}
	file, err := w.writeFile(fmt.Sprintf("accounts-%s.csv", e.At.Format("20060102T1504")), csv.String())
	if err != nil {
		return err
	}
	d.background(func() {
		code, err := d.fl.command(ctx, "accounts", "import", "--wait", file)
		if err != nil || code != 0 {
			d.t.note(fmt.Sprintf("accounts import %s failed (exit %d, %v)", file, code, err), 1)
		}
	})
	return nil
}

func indexOf(plan string) int {
	for i, p := range planNames {
		if p == plan {
			return i
		}
	}
	return 0
}
