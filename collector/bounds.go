package collector

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// Bounds are per-metric ceilings of one project-hour in the metric's raw unit. A value above
// its ceiling (scaled by the hours of a daily or monthly bucket) is not something Neon can
// produce: the page holding it is refused whole, nothing of it is stored, the sweep fails and
// the watermark stays. A metric without a ceiling is not checked.
type Bounds map[string]uint64

// Physical ceilings behind DefaultBounds: Neon's largest compute is 56 CU; a project runs one
// compute per branch plus read replicas, and 100 at once is far beyond what projects do;
// storage and transfer stay under a petabyte (byte-hours per hour are the bytes stored).
const (
	maxComputeUnits     = 56
	maxComputes         = 100
	maxBytesPerHour     = 1_000_000_000_000_000 // 1 PB
	maxBranchesPerHour  = 100_000
	secondsPerHour      = 3600
	maxCUSecondsPerHour = maxComputeUnits * secondsPerHour * maxComputes
)

// DefaultBounds returns the ceilings of every metric of both routes; see docs/collector.md.
func DefaultBounds() Bounds {
	b := Bounds{
		neon.MetricComputeUnitSeconds:   maxCUSecondsPerHour,
		neon.MetricComputeTimeSeconds:   maxCUSecondsPerHour,
		neon.MetricActiveTimeSeconds:    secondsPerHour * maxComputes,
		neon.MetricExtraBranchesMonth:   maxBranchesPerHour,
		neon.MetricRootBranchBytesMonth: maxBytesPerHour,
	}
	for _, m := range []string{
		neon.MetricChildBranchBytesMonth, neon.MetricInstantRestoreBytesMonth, neon.MetricPublicNetworkTransferBytes,
		neon.MetricPrivateNetworkTransferBytes, neon.MetricSnapshotStorageBytesMonth, neon.MetricWrittenDataBytes,
		neon.MetricSyntheticStorageSizeBytes, neon.MetricDataStorageBytesHour, neon.MetricLogicalSizeBytes,
		neon.MetricLogicalSizeBytesHour,
	} {
		b[m] = maxBytesPerHour
	}
	return b
}

// WithOverrides returns the default bounds with the given ceilings replacing theirs. A metric
// neither route has, or a zero ceiling, is an error naming it.
func WithOverrides(over map[string]uint64) (Bounds, error) {
	b := DefaultBounds()
	names := make([]string, 0, len(over))
	for m := range over {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if _, known := b[m]; !known {
			return nil, fmt.Errorf("bound for %q: not a metric of the v2 or legacy route (%s)", m, strings.Join(knownMetrics(), ", "))
		}
		if over[m] == 0 {
			return nil, fmt.Errorf("bound for %q: must be positive", m)
		}
		b[m] = over[m]
	}
	return b, nil
}

func knownMetrics() []string {
	return append(neon.V2Metrics(), neon.LegacyMetrics()...)
}

// CheckBounds refuses a grid holding a value above its metric's ceiling, naming the project,
// metric, bucket, value and ceiling; g holds buckets of granularity gran.
func CheckBounds(g *Grid, b Bounds, gran Granularity) error {
	i := 0
	for _, project := range g.Projects {
		for _, metric := range g.Metrics {
			ceiling, checked := b[metric]
			for _, bucket := range g.Buckets {
				c := &g.cells[i]
				i++
				if !checked || c.flags&flagObserved == 0 {
					continue
				}
				if limit := scaledCeiling(ceiling, gran, bucket); c.observed > limit {
					return fmt.Errorf("project %s metric %s %s %s: value %d is above %d, what one project can use (NEONMETER_COLLECT_VALUE_BOUNDS); the page is refused, nothing of it stored",
						project, metric, bucketWord(gran), bucket.UTC().Format(time.RFC3339), c.observed, limit)
				}
			}
		}
	}
	return nil
}

// scaledCeiling is an hourly ceiling times the hours of the bucket starting at start, saturating
// instead of wrapping.
func scaledCeiling(perHour uint64, gran Granularity, start time.Time) uint64 {
	hours := uint64(1)
	switch gran {
	case GranularityDaily:
		hours = 24
	case GranularityMonthly:
		hours = uint64(start.AddDate(0, 1, 0).Sub(start) / time.Hour)
	}
	if perHour > ^uint64(0)/hours {
		return ^uint64(0)
	}
	return perHour * hours
}

func bucketWord(g Granularity) string {
	switch g {
	case GranularityDaily:
		return "day"
	case GranularityMonthly:
		return "month"
	}
	return "hour"
}
