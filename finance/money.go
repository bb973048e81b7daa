package finance

import (
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
)

// MicrosPerUnit is how many micro-units make one unit of a currency: amounts are integers of
// 1e-6, exact in sums, and a price may have up to six decimals.
const MicrosPerUnit = 1_000_000

var decimalPattern = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]{1,6}))?$`)

// ParseMicros parses a non-negative decimal price like "0.16" into micro-units, exactly. It
// refuses negative numbers, NaN, infinities, exponents and more than six decimals.
func ParseMicros(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	m := decimalPattern.FindStringSubmatch(t)
	if m == nil {
		switch {
		case strings.HasPrefix(t, "-"):
			return 0, fmt.Errorf("negative price %q: prices are ≥ 0", s)
		case strings.EqualFold(strings.TrimPrefix(t, "."), "nan") || strings.Contains(strings.ToLower(t), "inf"):
			return 0, fmt.Errorf("price %q is not a number", s)
		}
		return 0, fmt.Errorf("price %q is not a decimal with at most 6 decimals, like 0.16", s)
	}
	whole, _ := strconv.ParseUint(m[1], 10, 64)
	frac := uint64(0)
	if m[2] != "" {
		frac, _ = strconv.ParseUint(m[2]+strings.Repeat("0", 6-len(m[2])), 10, 64)
	}
	return whole*MicrosPerUnit + frac, nil
}

// FormatMicros writes micro-units as a decimal with six places, like "-1.250000".
func FormatMicros(v int64) string {
	sign := ""
	u := uint64(v)
	if v < 0 {
		sign, u = "-", uint64(-v)
	}
	return fmt.Sprintf("%s%d.%06d", sign, u/MicrosPerUnit, u%MicrosPerUnit)
}

// mulDiv returns floor(a × b ÷ d) through a 128-bit product; ok is false when it exceeds
// MaxInt64 (or d is 0).
func mulDiv(a, b, d uint64) (int64, bool) {
	if d == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}
