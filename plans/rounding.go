package plans

// Rounding says how a running total of raw usage becomes whole billing units.
type Rounding string

const (
	// RoundFloor bills only completed units: the period's total is floor(Σ raw / divisor).
	RoundFloor Rounding = "floor"
	// RoundCeil bills a started unit: the period's total is ceil(Σ raw / divisor).
	RoundCeil Rounding = "ceil"
)

// Units returns the whole billing units of a running total of raw usage.
func (r Rounding) Units(total, divisor uint64) uint64 {
	if divisor <= 1 {
		return total
	}
	q := total / divisor
	if r == RoundCeil && total%divisor != 0 {
		q++
	}
	return q
}

// Delta returns the whole billing units to push for one hour whose raw usage moves the
// period's running total from before to after: Units(after) − Units(before). Pushing Delta
// every hour keeps the units pushed over the period equal to Units(Σ raw) at every hour, so
// remainders carry into later hours instead of being lost or counted twice. A revision that
// lowers the total gives a negative delta (Stripe meter events accept negative values).
func (r Rounding) Delta(before, after, divisor uint64) int64 {
	a, b := r.Units(after, divisor), r.Units(before, divisor)
	if a >= b {
		return int64(a - b)
	}
	return -int64(b - a)
}

// Pushes returns the whole units to push for each hour of one billing period, given the raw
// usage of each hour in order from the period's start. Their sum is Units(Σ hourly).
func (r Rounding) Pushes(hourly []uint64, divisor uint64) []int64 {
	out := make([]int64, len(hourly))
	var cum uint64
	for i, v := range hourly {
		out[i] = r.Delta(cum, cum+v, divisor)
		cum += v
	}
	return out
}

// Units returns the whole billing units of a running total of raw usage of b's metric.
func (b Billing) Units(total uint64) uint64 { return b.Rounding.Units(total, b.Divisor) }

// Delta returns the whole billing units to push for an hour that moves the period's running
// total of raw usage from before to after; see Rounding.Delta.
func (b Billing) Delta(before, after uint64) int64 { return b.Rounding.Delta(before, after, b.Divisor) }
