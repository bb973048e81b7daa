package accounts

import (
	"maps"
	"slices"
	"time"
)

// Diff returns the changes to append so that the stored history matches what Stripe shows,
// recording changes only. stored holds each project's latest stored change; observedAt is
// when the snapshot was taken. It is pure.
//
// History is append-only. For a project with stored history, only Stripe changes strictly
// after its latest stored change are appended, each only if it changes the state. If Stripe's
// current state still differs after that (Stripe kept no instant for the change: a price
// swapped in place, a project moved to another customer, an unpaid subscription), the current
// state is appended at observedAt. A project with no stored history gets its whole timeline.
// A project whose latest stored change came from Stripe and that no customer names any more
// becomes unowned at observedAt. Projects in d.Skip, and projects last set by a CSV import
// that Stripe does not name, are left alone.
func Diff(stored map[string]Record, d Derived, observedAt time.Time) []ProjectChange {
	observedAt = observedAt.UTC().Truncate(time.Second)
	var out []ProjectChange
	for _, p := range slices.Sorted(maps.Keys(d.Projects)) {
		if d.Skip[p] {
			continue
		}
		tl := d.Projects[p]
		last, ok := stored[p]
		var cur State // a project without history belongs to nobody
		var after time.Time
		if ok {
			cur, after = State{CustomerID: last.CustomerID, Plan: last.Plan}, last.ValidFrom.UTC()
		}
		for _, c := range tl {
			c = truncated(c)
			if (ok && !c.At.After(after)) || c.Same(cur) {
				continue
			}
			out = append(out, ProjectChange{ProjectID: p, Change: c})
			cur, after, ok = c.State, c.At, true
		}
		if len(tl) > 0 {
			if final := tl[len(tl)-1].State; !final.Same(cur) {
				out = append(out, ProjectChange{ProjectID: p, Change: Change{At: later(observedAt, after), State: final, Basis: BasisObserved}})
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(stored)) {
		last := stored[p]
		if _, named := d.Projects[p]; named || d.Skip[p] || last.Source != SourceStripe || last.CustomerID == "" {
			continue
		}
		out = append(out, ProjectChange{ProjectID: p, Change: Change{At: later(observedAt, last.ValidFrom.UTC()), Basis: BasisObserved}})
	}
	return out
}

// ProjectChange is a change of one project.
type ProjectChange struct {
	ProjectID string
	Change
}

// later returns t, or one second after floor when t is not after it: nothing is written at or
// before a project's latest change.
func later(t, floor time.Time) time.Time {
	if t.After(floor) {
		return t
	}
	return floor.Add(time.Second)
}

// truncated drops sub-second precision: ClickHouse's DateTime holds seconds, and Stripe's
// timestamps are whole seconds anyway.
func truncated(c Change) Change {
	c.At = c.At.UTC().Truncate(time.Second)
	return c
}
