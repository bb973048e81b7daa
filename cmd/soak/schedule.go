package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is one kind of event the soak applies: a fault, or a change of the world an operator or
// a customer makes.
type Kind string

// The events of a soak run.
const (
	KindKill        Kind = "kill-9"          // SIGKILL a serve replica (restarted at once)
	KindStop        Kind = "sigstop"         // SIGSTOP a lease holder past its TTL, then SIGCONT
	KindCHDown      Kind = "clickhouse-down" // stop a ClickHouse replica of the cluster for Span
	KindNeon429     Kind = "neon-429"        // a storm of injected 429s for Span
	KindNeon5xx     Kind = "neon-5xx"        // a burst of 500/503s for Span
	KindRepeatPage  Kind = "neon-repeat"     // duplicated consumption pages for Span
	KindStripeDown  Kind = "stripe-outage"   // every Stripe request answered 503 for Span
	KindStripeLost  Kind = "stripe-lost"     // N meter events applied, then their answers lost
	KindManualPush  Kind = "manual-push"     // an operator's `billing push --wait` during serve's
	KindManualEnf   Kind = "manual-enforce"  // an operator's `enforce --wait` during serve's
	KindRevise      Kind = "revise"          // Neon revises the last Span hours (late data)
	KindPlanChange  Kind = "plan-change"     // N projects change plan (accounts import)
	KindDelete      Kind = "delete"          // N projects are deleted in Neon
	KindNewCustomer Kind = "new-customer"    // N unmapped projects get a customer (accounts import)
)

// Event is one timed event of the schedule, at simulated time At.
type Event struct {
	At      time.Time
	Kind    Kind
	Replica int           // KindKill: the replica slot; KindCHDown: the ClickHouse replica (1-based)
	Job     string        // KindStop: the job whose holder is stopped
	Span    time.Duration // simulated
	N       int
	Seed    uint64 // picks projects, plans, …
}

func (e Event) String() string {
	s := e.At.Format("2006-01-02T15:04") + " " + string(e.Kind)
	switch e.Kind {
	case KindKill:
		s += fmt.Sprintf(" replica %d", e.Replica)
	case KindStop:
		s += " holder of " + e.Job
	case KindCHDown:
		s += fmt.Sprintf(" clickhouse replica %d for %s", e.Replica, e.Span)
	case KindNeon429, KindNeon5xx, KindRepeatPage, KindStripeDown:
		s += " for " + e.Span.String()
	case KindRevise:
		s += fmt.Sprintf(" the last %s", e.Span)
	case KindStripeLost, KindPlanChange, KindDelete, KindNewCustomer:
		s += fmt.Sprintf(" ×%d", e.N)
	}
	return s
}

// Plan is what the schedule is drawn for.
type Plan struct {
	Start, End time.Time // the simulated span; events fall inside [Start+2h, End-Quiet)
	Replicas   int
	Cluster    bool // a ClickHouse replica may be stopped
	Kills      int  // kill -9 of replicas
	Quiet      time.Duration
}

// Schedule draws the events of a run from seed: a pure function, so a run's schedule is
// printed, reproduced and tested without running it. Per simulated day it draws about one of
// each Neon and Stripe fault, a revision up to 48 h late, plan changes, deletions and new
// customers; over the run, the kills, one SIGSTOP per job (billing, enforcement), a ClickHouse
// replica down for an hour (on a cluster), and two manual pushes and enforcement cycles.
func Schedule(seed int64, p Plan) []Event {
	r := rand.New(rand.NewPCG(uint64(seed), 0x736f616b)) // "soak"
	lo, hi := p.Start.Add(2*time.Hour), p.End.Add(-p.Quiet)
	if !lo.Before(hi) {
		return nil
	}
	at := func() time.Time {
		return lo.Add(time.Duration(r.Int64N(int64(hi.Sub(lo))/int64(time.Minute))) * time.Minute)
	}
	var out []Event
	add := func(e Event) {
		e.At, e.Seed = at(), r.Uint64()
		out = append(out, e)
	}
	days := max(1, int(hi.Sub(lo)/(24*time.Hour)))
	for range p.Kills {
		add(Event{Kind: KindKill, Replica: r.IntN(max(1, p.Replicas))})
	}
	for _, job := range []string{"billing", "enforcement"} {
		add(Event{Kind: KindStop, Job: job})
	}
	if p.Cluster {
		add(Event{Kind: KindCHDown, Replica: 1 + r.IntN(2), Span: time.Hour})
	}
	for range 2 {
		add(Event{Kind: KindManualPush})
		add(Event{Kind: KindManualEnf})
	}
	for day := range days {
		late := time.Duration(3+r.IntN(46)) * time.Hour
		if day == 0 {
			late = 48 * time.Hour // the latest Neon revises
		}
		add(Event{Kind: KindNeon429, Span: time.Duration(60+r.IntN(180)) * time.Minute})
		add(Event{Kind: KindNeon5xx, Span: time.Duration(30+r.IntN(60)) * time.Minute})
		add(Event{Kind: KindRepeatPage, Span: time.Duration(60+r.IntN(120)) * time.Minute})
		add(Event{Kind: KindStripeDown, Span: time.Duration(60+r.IntN(120)) * time.Minute})
		add(Event{Kind: KindStripeLost, N: 1 + r.IntN(20)})
		add(Event{Kind: KindRevise, Span: late})
		add(Event{Kind: KindPlanChange, N: 1 + r.IntN(10)})
		add(Event{Kind: KindDelete, N: 1 + r.IntN(3)})
		add(Event{Kind: KindNewCustomer, N: 1 + r.IntN(5)})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	return out
}

// Count returns how many events of each kind the schedule holds.
func Count(events []Event) map[Kind]int {
	out := map[Kind]int{}
	for _, e := range events {
		out[e.Kind]++
	}
	return out
}
