package billing

import (
	"time"

	"github.com/neonmeter/neonmeter/accounts"
)

// Lagging is a project whose final hours end before the push window does: every hour starting
// before CompleteThrough is collected, later ones may still be missing (the budgeted collector
// reaches idle projects through its rolling sweep); every hour starting before FinalThrough
// (never after CompleteThrough) was read after Neon stopped revising it, while the hours
// between were read within Neon's provisional window and may still change.
type Lagging struct {
	ProjectID       string
	CompleteThrough time.Time
	FinalThrough    time.Time
}

// IncompleteAt is the project's first hour a push must hold. Hours before settled are pushed
// only once final; hours from settled on (the last hours of a period, pushed within its
// invoice grace as they stand) once collected.
func (l Lagging) IncompleteAt(settled time.Time) time.Time {
	if l.FinalThrough.Before(settled) {
		return l.FinalThrough.UTC().Truncate(time.Hour)
	}
	return l.CompleteThrough.UTC().Truncate(time.Hour)
}

// IncompleteFrom returns, per customer, the first hour of [from, to) that is not complete for
// all of the customer's projects: the earliest hour a lagging project of the customer still
// misses (IncompleteAt settled). Collection completes a project's hours as a prefix, so every
// later hour of that customer is incomplete too.
func IncompleteFrom(lagging []Lagging, tl *accounts.Timelines, from, to, settled time.Time) map[string]time.Time {
	cut := map[string]time.Time{}
	for _, l := range lagging {
		start := l.IncompleteAt(settled)
		if start.Before(from) {
			start = from
		}
		for h := start; h.Before(to); h = h.Add(time.Hour) {
			a := tl.At(l.ProjectID, h)
			if !a.Mapped() {
				continue
			}
			if c, ok := cut[a.CustomerID]; !ok || h.Before(c) {
				cut[a.CustomerID] = h
			}
			if !tl.ChangesWithin(l.ProjectID, h, to) {
				break // the same customer owns the rest; its cut is already this hour
			}
		}
	}
	return cut
}

// HoldIncomplete leaves out of a push every value and ledger row of a customer's hours from its
// cut on: they are pushed once complete, so Stripe never sees a partial hour that scheduling
// would revise later. Leaving the ledger rows out too keeps Plan from reading a held key as a
// revision to zero. held counts the values left out.
func HoldIncomplete(want []Value, ledger []LedgerRow, cut map[string]time.Time) (keptWant []Value, keptLedger []LedgerRow, held int) {
	if len(cut) == 0 {
		return want, ledger, 0
	}
	incomplete := func(customer string, hour time.Time) bool {
		c, ok := cut[customer]
		return ok && !hour.Before(c)
	}
	for _, v := range want {
		if incomplete(v.CustomerID, v.Hour) {
			held++
			continue
		}
		keptWant = append(keptWant, v)
	}
	for _, row := range ledger {
		if !incomplete(row.CustomerID, row.Hour) {
			keptLedger = append(keptLedger, row)
		}
	}
	return keptWant, keptLedger, held
}
