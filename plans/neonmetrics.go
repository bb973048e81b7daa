// The Neon metrics a plan may name (not Prometheus metrics): their dimension and where
// neonmeter reads them.

package plans

import (
	"sort"

	"github.com/neonmeter/neonmeter/neon"
)

// Dimension is what a metric's raw integer counts; it decides which units a limit or a billing
// unit of that metric may be written in.
type Dimension string

const (
	// DimSeconds is wall-clock seconds (active time).
	DimSeconds Dimension = "seconds"
	// DimCUSeconds is compute-unit seconds (CU-seconds; Neon's CPU-seconds are the same).
	DimCUSeconds Dimension = "CU-seconds"
	// DimBytes is bytes: a quantity that adds up (written, transferred) or a size (a level).
	DimBytes Dimension = "bytes"
	// DimByteHours is byte-hours accumulated per bucket (storage over time).
	DimByteHours Dimension = "byte-hours"
	// DimBranchHours is branch-hours.
	DimBranchHours Dimension = "branch-hours"
)

// Route is a set of Neon API routes neonmeter reads a metric from (a bit per route).
type Route uint8

const (
	// RouteV2 metrics come from /consumption_history/v2/projects (usage_facts).
	RouteV2 Route = 1 << iota
	// RouteLegacy metrics come from the legacy /consumption_history/projects (usage_facts).
	RouteLegacy
	// RouteCounter metrics are the project's current-period counters and quota fields that
	// Neon itself enforces (GET/PATCH /projects/{id}); enforcement reads them there.
	RouteCounter
)

// MetricInfo describes a metric a plan may name.
type MetricInfo struct {
	Name      string
	Dimension Dimension
	// Routes are where neonmeter reads the metric.
	Routes Route
	// Level marks sizes (a value at a moment, not an amount that adds up over hours): they can
	// be limited but not billed by summing hours.
	Level bool
}

// Collected reports whether neonmeter stores the metric's hourly usage, which billing needs.
func (m MetricInfo) Collected() bool { return m.Routes&(RouteV2|RouteLegacy) != 0 }

// Billable reports whether hourly values of the metric can be summed into a bill.
func (m MetricInfo) Billable() bool { return m.Collected() && !m.Level }

// DataTransferBytes is the project counter and quota of egress through Neon's proxy. Neither
// consumption route reports it per hour, so it can be limited (enforcement reads the counter)
// but not billed.
const DataTransferBytes = "data_transfer_bytes"

// metricTable lists every metric a catalog may name. Units follow Neon's docs: CU-seconds,
// byte-hours (storage accumulated per bucket), bytes and branch-hours.
func metricTable() map[string]MetricInfo {
	v2, leg, ctr := RouteV2, RouteLegacy, RouteCounter
	list := []MetricInfo{
		{neon.MetricComputeUnitSeconds, DimCUSeconds, v2, false},
		{neon.MetricRootBranchBytesMonth, DimByteHours, v2, false},
		{neon.MetricChildBranchBytesMonth, DimByteHours, v2, false},
		{neon.MetricInstantRestoreBytesMonth, DimByteHours, v2, false},
		{neon.MetricSnapshotStorageBytesMonth, DimByteHours, v2, false},
		{neon.MetricPublicNetworkTransferBytes, DimBytes, v2, false},
		{neon.MetricPrivateNetworkTransferBytes, DimBytes, v2, false},
		{neon.MetricExtraBranchesMonth, DimBranchHours, v2, false},

		{neon.MetricActiveTimeSeconds, DimSeconds, leg | ctr, false},
		{neon.MetricComputeTimeSeconds, DimCUSeconds, leg | ctr, false},
		{neon.MetricWrittenDataBytes, DimBytes, leg | ctr, false},
		{neon.MetricSyntheticStorageSizeBytes, DimBytes, leg, true},
		{neon.MetricDataStorageBytesHour, DimByteHours, leg | ctr, false},
		{neon.MetricLogicalSizeBytes, DimBytes, leg | ctr, true},
		{neon.MetricLogicalSizeBytesHour, DimByteHours, leg, false},

		{DataTransferBytes, DimBytes, ctr, false},
	}
	m := make(map[string]MetricInfo, len(list))
	for _, mi := range list {
		m[mi.Name] = mi
	}
	return m
}

// LookupMetric returns what the catalog knows of a metric name.
func LookupMetric(name string) (MetricInfo, bool) {
	mi, ok := metricTable()[name]
	return mi, ok
}

// Metrics returns every metric a catalog may name, sorted by name.
func Metrics() []MetricInfo {
	t := metricTable()
	out := make([]MetricInfo, 0, len(t))
	for _, mi := range t {
		out = append(out, mi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
