package collector

import (
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// Endpoint names which consumption route a collector reads. It is stored with every run and
// watermark.
type Endpoint string

const (
	EndpointV2     Endpoint = "v2"
	EndpointLegacy Endpoint = "legacy"
)

// Valid reports whether e is a known endpoint.
func (e Endpoint) Valid() bool { return e == EndpointV2 || e == EndpointLegacy }

// Granularity is the size of a consumption bucket: sweeps collect hourly buckets, backfills
// beyond Neon's hourly window daily and monthly ones.
type Granularity string

const (
	GranularityHourly  Granularity = "hourly"
	GranularityDaily   Granularity = "daily"
	GranularityMonthly Granularity = "monthly"
)

// Valid reports whether g is a known granularity.
func (g Granularity) Valid() bool { return g == GranularityHourly || g.Coarse() }

// Coarse reports whether g is daily or monthly: those facts are kept apart from hourly ones.
func (g Granularity) Coarse() bool { return g == GranularityDaily || g == GranularityMonthly }

// neonGranularity returns the consumption API's name of the granularity.
func (g Granularity) neonGranularity() neon.Granularity {
	switch g {
	case GranularityDaily:
		return neon.GranularityDaily
	case GranularityMonthly:
		return neon.GranularityMonthly
	}
	return neon.GranularityHourly
}

// Feed is what runs and watermarks are kept per: one org's endpoint at one granularity.
type Feed struct {
	OrgID       string
	Endpoint    Endpoint
	Granularity Granularity
}

// Outcome is where a collection run stands.
type Outcome string

const (
	OutcomeRunning Outcome = "running"
	OutcomeSuccess Outcome = "success"
	OutcomeFailed  Outcome = "failed"
	// OutcomeStopped: the caller stopped the run (a shutdown) before it finished; not a failure.
	// What it wrote stays (it is correct), the watermark did not move.
	OutcomeStopped Outcome = "stopped"
	// OutcomeAbandoned: the run's process died (kill -9, a crash) without recording an outcome;
	// written by a later run once the deadline recorded in the start row has passed.
	OutcomeAbandoned Outcome = "abandoned"
)

// Fact is one hourly usage value of one project and metric.
type Fact struct {
	OrgID     string
	ProjectID string
	// Metric is Neon's metric name, like compute_unit_seconds.
	Metric string
	// Hour is the start of the hour, UTC, on the hour.
	Hour time.Time
	// Value is in Neon's raw unit of the metric (CU-seconds, byte-hours, bytes, branch-hours).
	Value      uint64
	PeriodID   string
	PeriodPlan string
	// CollectedAt is when the value was read from Neon (stored to the second).
	CollectedAt time.Time
	// Version orders facts of the same (org, project, metric, hour): the highest replaces the
	// others. A re-collection or revision must use a version above the stored one.
	Version uint64
}

// CoarseFact is one daily or monthly usage value, from a backfill beyond Neon's 168-hour hourly
// window. Ranges covered by hourly facts must not also be written as coarse facts.
type CoarseFact struct {
	OrgID     string
	ProjectID string
	Metric    string
	// Granularity is GranularityDaily or GranularityMonthly.
	Granularity Granularity
	// BucketStart and BucketEnd are the bucket's bounds as Neon reported them, UTC; the end is
	// exclusive.
	BucketStart time.Time
	BucketEnd   time.Time
	// Value is in Neon's raw unit of the metric.
	Value       uint64
	PeriodID    string
	PeriodPlan  string
	CollectedAt time.Time
	// Version orders facts of the same key; the highest replaces the others.
	Version uint64
}

// Revision records that a stored hourly value changed: Neon revised it, or it was
// re-collected with a different value.
type Revision struct {
	OrgID     string
	ProjectID string
	Metric    string
	Hour      time.Time
	OldValue  uint64
	NewValue  uint64
	// OldVersion is the version replaced; logging the same replacement twice (same key and
	// OldVersion) keeps one revision.
	OldVersion uint64
	NewVersion uint64
	DetectedAt time.Time
	RunID      string
}

// Run is one collection run. A run is written twice with the same RunID and StartedAt: at its
// start with OutcomeRunning and a zero FinishedAt, and at its end with the final counts,
// outcome and FinishedAt, which replaces the start row.
type Run struct {
	RunID       string
	OrgID       string
	Endpoint    Endpoint
	Granularity Granularity
	// WindowFrom and WindowTo bound the buckets requested, [from, to).
	WindowFrom time.Time
	WindowTo   time.Time
	StartedAt  time.Time
	// FinishedAt is zero while the run is running; it orders the run's rows (to the second), so
	// a final row replaces the start row.
	FinishedAt time.Time
	// Pages of the consumption endpoint fetched.
	Pages uint64
	// Projects seen in the pages.
	Projects uint64
	// ValuesFetched counts metric values in the responses.
	ValuesFetched uint64
	// RowsWritten counts hourly or coarse facts written.
	RowsWritten uint64
	// Revisions counts stored values that changed.
	Revisions uint64
	// Retries counts retried HTTP requests.
	Retries uint64
	// Errors counts failed requests and steps, retried or not.
	Errors uint64
	// DurationSeconds is the run's wall time in seconds.
	DurationSeconds float64
	Outcome         Outcome
	// Error is the error that failed the run, empty otherwise.
	Error string
	// Host and PID name the process that ran it, for an operator looking at an abandoned run.
	Host string
	PID  uint32
	// DeadlineAt is when the run must have ended (StartedAt plus the sweep deadline): a run still
	// running after it, plus AbandonGrace, is abandoned. Zero in rows older than the field.
	DeadlineAt time.Time
}
