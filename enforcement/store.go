package enforcement

import (
	"context"
	"time"

	"github.com/neonmeter/neonmeter/plans"
)

// Store is the storage a reconciler reads and writes; enforcement/chstore implements it on
// ClickHouse. Plans in force come from accounts (Config.Accounts), not from here.
type Store interface {
	// UsageSince calls fn with every project's usage of every metric over [from, to), read in
	// one pass over the whole fleet (the hourly usage the collector published).
	UsageSince(ctx context.Context, from, to time.Time, fn func(PeriodUsage)) error
	// HourlyWatermarks returns how far each org's hourly collection is known complete.
	HourlyWatermarks(ctx context.Context) ([]HourlyWatermark, error)
	// Progress returns how far the collector has each project's hourly usage (the projects it
	// keeps a progress row for; older collectors keep none).
	Progress(ctx context.Context) ([]ProjectProgress, error)
	// States returns every project's remembered state, by project id.
	States(ctx context.Context) (map[string]State, error)
	// WriteStates stores states (the highest Version of a project wins); none writes nothing.
	WriteStates(ctx context.Context, states []State) error
	// InsertAudit appends audit records; none writes nothing.
	InsertAudit(ctx context.Context, recs []AuditRecord) error
	// AuditOf returns a project's audit records, newest first, at most limit of them.
	AuditOf(ctx context.Context, projectID string, limit int) ([]AuditRecord, error)
	// LastBreakerEvent returns the newest trip or acknowledgement of the circuit breaker (the
	// zero value when there is none).
	LastBreakerEvent(ctx context.Context) (BreakerEvent, error)
	// InsertBreakerEvent appends a trip or an acknowledgement.
	InsertBreakerEvent(ctx context.Context, e BreakerEvent) error
	// AtRiskSet returns the projects last published as at risk (AtRisk true), by project id.
	AtRiskSet(ctx context.Context) (map[string]AtRiskRow, error)
	// WriteAtRisk publishes changes of the at-risk flag; none writes nothing.
	WriteAtRisk(ctx context.Context, rows []AtRiskRow) error
}

// ProjectProgress is how far the collector has one project's hourly usage (a row of
// collection_progress).
type ProjectProgress struct {
	OrgID, ProjectID string
	// CompleteThrough: every hour starting before it is collected.
	CompleteThrough time.Time
}

// AtRiskRow is a change of a project's at-risk flag (a row of enforcement_at_risk): the projects
// near or over a hard limit, or suspended, whose usage the collector keeps freshest.
type AtRiskRow struct {
	ProjectID, OrgID string
	AtRisk           bool
	// Reason says why it entered ("over compute_unit_seconds", "suspended") or left ("").
	Reason    string
	UpdatedAt time.Time
	// RunID is the cycle that wrote the row.
	RunID string
}

// BreakerEventKind says what happened to the circuit breaker.
type BreakerEventKind string

// Breaker events.
const (
	BreakerTripped      BreakerEventKind = "tripped"      // a cycle had more to enforce than its cap
	BreakerAcknowledged BreakerEventKind = "acknowledged" // an operator let enforcement resume
)

// BreakerEvent is a trip of the circuit breaker or an operator's acknowledgement of one (a row
// of enforcement_breaker). While the newest is a trip, no project is newly suspended or
// throttled (Policy.BreakerLatch).
type BreakerEvent struct {
	At   time.Time
	Kind BreakerEventKind
	// CycleID is the cycle that tripped it, or "ack".
	CycleID string
	// Enforcing and Cap are the trip's projects to newly enforce and the cap they exceeded.
	Enforcing, Cap int
	// Version orders events: the highest is the newest.
	Version uint64
}

// Latched reports whether the breaker holds: the newest event is a trip.
func (e BreakerEvent) Latched() bool { return e.Kind == BreakerTripped }

// PeriodUsage is one project's usage of one metric over a period: the sum of its hourly values
// and the largest single hour (what a size metric is judged by).
type PeriodUsage struct {
	OrgID, ProjectID, Metric string
	Sum, Max                 uint64
}

// Judged is the usage a limit is judged by: the sum of the hours, or for a size metric the
// largest hour. Exported for what-if simulations (finance/whatif), which judge usage as
// enforcement does.
func (u PeriodUsage) Judged() uint64 {
	if mi, ok := plans.LookupMetric(u.Metric); ok && mi.Level {
		return u.Max
	}
	return u.Sum
}

// HourlyWatermark is how far one org's hourly collection from one Neon endpoint is known
// complete.
type HourlyWatermark struct {
	OrgID, Endpoint string
	CoveredUntil    time.Time
}

// Seen is what enforcement knows of a project in Neon, in Memory and State alike. A new period
// or level keeps it: it describes Neon, not the usage.
type Seen struct {
	// Applied fingerprints the Neon settings last applied or observed equal to the target;
	// empty when Neon's state is unknown.
	Applied string
	// EndpointsPending is set while endpoint changes wait for the compute to be active (an
	// idle compute is never patched: that would wake it).
	EndpointsPending bool
	// ObservedAt is when the project's computes were last read (zero if never); its settings
	// are seen in the project list every cycle.
	ObservedAt time.Time
	// Gone is set once Neon answered 404 for the project (deleted but still mapped): later
	// cycles skip it until a project list shows it again.
	Gone bool
	// Prior is what the project had before enforcement changed it, as text (prior.go); empty
	// when enforcement first managed it before this was recorded.
	Prior string
	// IdleOverMax counts idle computes above the plan's max CU (left alone: patching would wake
	// them; capped once seen running).
	IdleOverMax int
}

// State is what enforcement last knew of a project, as stored between cycles (a row of
// enforcement_state); Memory is the same as Evaluate reads it.
type State struct {
	ProjectID string
	// PeriodStart is the start of the plan period the row belongs to.
	PeriodStart time.Time
	Plan        string
	// Level is the worst level last seen.
	Level Level
	// OverSince is when the project was first seen over a limit in this period (zero if not).
	OverSince time.Time
	// ReleasedPeriod is the period an operator released the project for (zero if none).
	ReleasedPeriod time.Time
	Seen
	UpdatedAt time.Time
	// Version orders rows of a project: the highest wins.
	Version uint64
}

// AuditRecord is one decision or action of enforcement (a row of enforcement_audit).
type AuditRecord struct {
	At time.Time
	// CycleID is the cycle's run id, or "release" for an operator's release.
	CycleID   string
	ProjectID string
	Plan      string
	// Metric, Usage and Limit are the project's worst finding when the row was written.
	Metric string
	Usage  uint64
	Limit  uint64
	Level  Level
	// Action is an ActionKind, or AuditDecision for a level change or a release.
	Action string
	// Reason is the action's Reason, or for a decision the status decided and what held it back.
	Reason       string
	Mode         Mode
	Before       string
	After        string
	OperationIDs []string
	Outcome      Outcome
	Error        string
}
