package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/neon/sim"
)

// report is what one run did and found.
type report struct {
	o                   options
	end                 time.Time // the span's end (simulated)
	events              []Event
	tally               *tally
	settled, stopped    time.Time // simulated
	setup, loop, checks time.Duration
	finalPush           int // exit code of the billing push after the replicas stopped
	finalEnforce        int // exit code of the enforcement pass after it
	rows                []check
	scrapes             []scrape
	simStats            sim.Stats
	pendingLost         int   // Stripe lost-response faults that never met a request
	stripeRefused       int64 // requests the Stripe outages refused
	stripeRequests      int   // requests the fake Stripe received
	stripeDropped       int   // of them, applied and then their answer lost
}

// failed names the checks that failed.
func (r *report) failed() []string {
	var out []string
	for _, c := range r.rows {
		if !c.ok() {
			out = append(out, c.name)
		}
	}
	if len(r.rows) == 0 {
		out = append(out, "no check ran")
	}
	return out
}

// write prints the run's parameters, the faults injected and the table of checks (markdown).
func (r *report) write(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "\n## Soak: %d days, %d projects, %d replica(s), seed %d\n\n", o.Days, o.Projects, o.Replicas, o.Seed)
	fmt.Fprintf(w, "Simulated %s to %s at %s per simulated hour; budget %g consumption calls per simulated minute.\n",
		o.Start.Format(time.RFC3339), r.end.Format(time.RFC3339), o.Hour, o.Budget)
	settled := "never (settle limit reached)"
	if !r.settled.IsZero() {
		settled = r.settled.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Settled %s; replicas stopped %s. Real time: set-up %s, run %s, checks %s.\n\n", settled,
		r.stopped.Format(time.RFC3339), r.setup.Round(time.Second), r.loop.Round(time.Second), r.checks.Round(time.Second))
	if r.tally != nil {
		r.writeFaults(w)
	}
	fmt.Fprintln(w, "| Check | Compared | Mismatches | Result | Detail |")
	fmt.Fprintln(w, "|---|---:|---:|---|---|")
	for _, c := range r.rows {
		res := "ok"
		switch {
		case c.unjudged:
			res = "measured (no rule yet)"
		case c.bad > 0:
			res = "FAILED"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s |\n", c.name, c.compared, c.bad, res, c.detail)
	}
	for _, c := range r.rows {
		for _, e := range c.examples {
			fmt.Fprintf(w, "- %s: %s\n", c.name, e)
		}
	}
}

// writeFaults prints the events applied by kind and what they caused.
func (r *report) writeFaults(w io.Writer) {
	planned := Count(r.events)
	kinds := make([]Kind, 0, len(planned))
	for k := range planned {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Fprintln(w, "| Event | Scheduled | Applied |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, k := range kinds {
		fmt.Fprintf(w, "| %s | %d | %d |\n", k, planned[k], r.tally.applied[k])
	}
	s := r.simStats
	fmt.Fprintf(w, "\nNeon: %d consumption calls; %d requests answered with an injected fault and %d rate-limited (429 from the bucket), each retried. "+
		"Stripe: %d requests reached it, %d applied with their answer lost, %d refused by outages (each retried); %d lost-response faults left unused. "+
		"%d scrapes of /metrics. After the replicas stopped: billing push exit %d, enforcement pass exit %d.\n",
		s.ConsumptionRequests, s.Faults, s.RateLimited, r.stripeRequests, r.stripeDropped, r.stripeRefused, r.pendingLost, len(r.scrapes), r.finalPush, r.finalEnforce)
	notes := make([]string, 0, len(r.tally.notes))
	for k, n := range r.tally.notes {
		notes = append(notes, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(notes)
	fmt.Fprintf(w, "Outcomes: %s.\n\n", strings.Join(notes, "; "))
}
