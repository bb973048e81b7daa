package collector

import (
	"sort"
	"time"
)

// Range is a half-open span of hours [From, To).
type Range struct {
	From, To time.Time
}

// Hours is the number of whole hours in the range.
func (r Range) Hours() int { return int(r.To.Sub(r.From) / time.Hour) }

// Gaps returns the parts of [from, to) that no successful sweep covered, in order. covered are
// the windows of successful sweeps, in any order and possibly overlapping.
func Gaps(covered []Range, from, to time.Time) []Range {
	cs := make([]Range, 0, len(covered))
	for _, c := range covered {
		if c.To.After(from) && c.From.Before(to) {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].From.Before(cs[j].From) })
	var gaps []Range
	cursor := from
	for _, c := range cs {
		if c.From.After(cursor) {
			gaps = append(gaps, Range{From: cursor, To: c.From})
		}
		if c.To.After(cursor) {
			cursor = c.To
		}
		if !cursor.Before(to) {
			break
		}
	}
	if cursor.Before(to) {
		gaps = append(gaps, Range{From: cursor, To: to})
	}
	return gaps
}
