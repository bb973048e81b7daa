package plans

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
)

// HoursPerMonth is Neon's fixed billing month for byte-hours and branch-hours (744 h).
const HoursPerMonth = 744

// units lists, per dimension, each unit name (lower case) and how many raw units it holds.
// Storage "months" are Neon's 744 h; GB and friends are decimal, as Neon bills them.
func units(d Dimension) map[string]uint64 {
	const (
		kb = 1_000
		mb = 1_000_000
		gb = 1_000_000_000
		tb = 1_000_000_000_000
	)
	switch d {
	case DimSeconds:
		return map[string]uint64{"s": 1, "sec": 1, "second": 1, "seconds": 1,
			"m": 60, "min": 60, "minute": 60, "minutes": 60,
			"h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
	case DimCUSeconds:
		return map[string]uint64{"cu-s": 1, "cu-second": 1, "cu-seconds": 1,
			"cu-h": 3600, "cu-hour": 3600, "cu-hours": 3600}
	case DimBytes:
		return map[string]uint64{"b": 1, "byte": 1, "bytes": 1, "kb": kb, "mb": mb, "gb": gb, "tb": tb,
			"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	case DimByteHours:
		return map[string]uint64{"b-h": 1, "byte-hour": 1, "byte-hours": 1,
			"mb-h": mb, "mb-hour": mb, "mb-hours": mb, "gb-h": gb, "gb-hour": gb, "gb-hours": gb,
			"mb-month": mb * HoursPerMonth, "mb-months": mb * HoursPerMonth,
			"gb-month": gb * HoursPerMonth, "gb-months": gb * HoursPerMonth,
			"tb-month": tb * HoursPerMonth, "tb-months": tb * HoursPerMonth}
	case DimBranchHours:
		return map[string]uint64{"branch-h": 1, "branch-hour": 1, "branch-hours": 1,
			"branch-month": HoursPerMonth, "branch-months": HoursPerMonth}
	}
	return nil
}

// unitNames lists a dimension's units for error messages, shortest first.
func unitNames(d Dimension) string {
	var names []string
	for n := range units(d) {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	return strings.Join(names, ", ")
}

// unitFactor returns how many raw units one unit named u holds in dimension d.
func unitFactor(d Dimension, u string) (uint64, error) {
	f, ok := units(d)[strings.ToLower(strings.TrimSpace(u))]
	if !ok {
		return 0, fmt.Errorf("unit %q does not measure %s (use one of: %s)", u, d, unitNames(d))
	}
	return f, nil
}

var quantityPattern = regexp.MustCompile(`^([+-]?)([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z][A-Za-z-]*)?$`)

// maxQuantity bounds limits (about 1.15e18 raw units) so that a warning threshold of up to
// 1000 % of one still fits in a uint64.
const maxQuantity = uint64(1) << 60

// parseQuantity turns "100h", "25 CU-hour", "0.512 GB-month" or a plain integer of raw units
// into raw units of dimension d. It refuses negative values and values that are not a whole
// number of raw units (a limit must be exact: it is compared with integers).
func parseQuantity(d Dimension, s string) (uint64, error) {
	s = strings.TrimSpace(s)
	m := quantityPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a number with an optional unit, like \"100h\" or \"0.5 GB\"", s)
	}
	if m[1] == "-" {
		return 0, fmt.Errorf("negative limit %s", s)
	}
	n, ok := new(big.Rat).SetString(m[2])
	if !ok {
		return 0, fmt.Errorf("%q is not a number", m[2])
	}
	factor := uint64(1)
	if m[3] != "" {
		f, err := unitFactor(d, m[3])
		if err != nil {
			return 0, err
		}
		factor = f
	} else if !n.IsInt() {
		return 0, fmt.Errorf("%s without a unit is in raw %s and must be a whole number", s, d)
	}
	n.Mul(n, new(big.Rat).SetInt(new(big.Int).SetUint64(factor)))
	if !n.IsInt() {
		return 0, fmt.Errorf("%s is not a whole number of %s", s, d)
	}
	v := n.Num()
	if !v.IsUint64() || v.Uint64() > maxQuantity {
		return 0, fmt.Errorf("%s is too large (at most %d %s)", s, maxQuantity, d)
	}
	return v.Uint64(), nil
}
