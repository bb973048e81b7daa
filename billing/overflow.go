package billing

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// OverflowError is a sum billing refuses because it does not fit the int64 Stripe's values and
// the ledger take (or would wrap): hostile or corrupt usage, or a corrupt Stripe answer. Such a
// sum is never turned into a value: the cycle stops with this error, naming where it arose.
type OverflowError struct {
	// What overflowed: "hourly usage", "running total", "value", "expected value",
	// "Stripe value" or "drift".
	What                                  string
	CustomerID, Target, Metric, ProjectID string
	Hour                                  time.Time
}

func (e *OverflowError) Error() string {
	where := "customer " + e.CustomerID
	if e.Target != "" {
		where += " target " + e.Target
	}
	if e.Metric != "" {
		where += " metric " + e.Metric
	}
	if e.ProjectID != "" {
		where += " project " + e.ProjectID
	}
	return fmt.Sprintf("%s of %s hour %s exceeds %d: refusing a value that would wrap (hostile or corrupt data; check usage_facts and the collector's bounds)",
		e.What, where, e.Hour.UTC().Format(time.RFC3339), int64(math.MaxInt64))
}

// addRaw adds raw usage; ok is false past math.MaxInt64, the largest value billing can hold.
func addRaw(a, b uint64) (sum uint64, ok bool) {
	s, carry := bits.Add64(a, b, 0)
	return s, carry == 0 && s <= math.MaxInt64
}

// addInt adds signed units; ok is false when the sum would wrap.
func addInt(a, b int64) (sum int64, ok bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

// subInt returns a − b; ok is false when the difference would wrap.
func subInt(a, b int64) (diff int64, ok bool) {
	d := a - b
	return d, (d < a) == (b > 0)
}

// absFloat is |v| as a float64: unlike an int64 it has no value whose absolute value wraps.
func absFloat(v int64) float64 { return math.Abs(float64(v)) }
