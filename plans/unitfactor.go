package plans

// UnitFactor returns how many raw units of dimension d one unit named u holds (case-insensitive,
// the names the catalog accepts: "CU-hour" → 3600, "GB-month" → 744e9): the cost table of
// finance/ prices Neon's metrics in the same units.
func UnitFactor(d Dimension, u string) (uint64, error) { return unitFactor(d, u) }
