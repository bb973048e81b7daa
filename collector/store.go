package collector

import (
	"context"
	"iter"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// ConsumptionReader is the part of the Neon client a collector reads consumption through. None
// of these calls wakes a compute.
type ConsumptionReader interface {
	ConsumptionV2(ctx context.Context, q neon.ConsumptionQuery) iter.Seq2[*neon.ConsumptionPage, error]
	ConsumptionLegacy(ctx context.Context, q neon.ConsumptionQuery) iter.Seq2[*neon.ConsumptionPage, error]
	Stats() neon.Stats
}

// Store is where a collector keeps hourly facts, their revisions, its runs and watermarks
// (collector/chstore on ClickHouse).
type Store interface {
	// LoadStored records in the grid every stored hourly fact of its projects and metrics in
	// [from, to).
	LoadStored(ctx context.Context, g *Grid, from, to time.Time) error
	// InsertFacts writes facts; a fact replaces the stored one of its key when its version is
	// higher.
	InsertFacts(ctx context.Context, facts []Fact) error
	InsertRevisions(ctx context.Context, revs []Revision) error
	// WriteRun records a run's start row or its final row.
	WriteRun(ctx context.Context, r Run) error
	// LastRun returns the newest successful run of the feed in the last 30 days.
	LastRun(ctx context.Context, f Feed) (Run, bool, error)
	// Runs returns the latest row of every run of the org and endpoint started at or after
	// since, oldest first.
	Runs(ctx context.Context, orgID string, ep Endpoint, since time.Time) ([]Run, error)
	// Watermark returns how far the feed is known complete, and false if nothing was recorded.
	Watermark(ctx context.Context, f Feed) (time.Time, bool, error)
	// SetWatermark records that the feed is complete up to coveredUntil; the latest call (by
	// now) wins, even one that moves the watermark back.
	SetWatermark(ctx context.Context, f Feed, coveredUntil, now time.Time) error
}

// CoarseStore is where daily and monthly facts go, apart from hourly ones.
type CoarseStore interface {
	// LoadStoredCoarse records in the grid the stored coarse facts of one granularity whose
	// bucket starts in [from, to).
	LoadStoredCoarse(ctx context.Context, g *Grid, granularity Granularity, from, to time.Time) error
	InsertCoarseFacts(ctx context.Context, facts []CoarseFact) error
}

// StatusReader is what ReadStatus needs from the store.
type StatusReader interface {
	Watermark(ctx context.Context, f Feed) (time.Time, bool, error)
	// Runs returns the latest row of every run of the org and endpoint started at or after
	// since, oldest first.
	Runs(ctx context.Context, orgID string, ep Endpoint, since time.Time) ([]Run, error)
}

// ProjectProgress is how far one project is collected (collection_progress): every hour starting
// before CompleteThrough was collected from a full answer, and every hour starting before
// FinalThrough (never after CompleteThrough) was read once Neon no longer revised it.
type ProjectProgress struct {
	OrgID           string
	ProjectID       string
	CompleteThrough time.Time
	// FinalThrough ends the hours billing may push: the ones after it were collected within
	// Neon's provisional window and are re-read before they count.
	FinalThrough time.Time
	// RereadThrough is the complete-through of the project's last deep call (one that re-read
	// the lookback; see Batch.Deep): never after CompleteThrough.
	RereadThrough time.Time
	// LastActiveAt is the compute_last_active_at Neon listed when the project was collected;
	// zero when never active.
	LastActiveAt time.Time
	Tier         Tier // why it was collected
	UpdatedAt    time.Time
	RunID        string
}

// FleetStore is what a budgeted cycle needs from the store beyond a sweep's.
type FleetStore interface {
	Store
	// ScanProgress calls fn with the latest progress of every project of the org that has one,
	// in project_id order (bytewise); only ProjectID, CompleteThrough, RereadThrough and
	// LastActiveAt are set.
	ScanProgress(ctx context.Context, orgID string, fn func(ProjectProgress) error) error
	// ProgressOf returns the latest progress of these projects of the org, by project id.
	ProgressOf(ctx context.Context, orgID string, projectIDs []string) (map[string]ProjectProgress, error)
	// WriteProgress records progress rows; the row with the latest UpdatedAt of a project wins.
	WriteProgress(ctx context.Context, rows []ProjectProgress) error
	// ScanAtRisk calls fn with every project of the org enforcement holds at risk, in
	// project_id order (bytewise).
	ScanAtRisk(ctx context.Context, orgID string, fn func(projectID string) error) error
}

// FreshnessReader is what ReadFreshness needs from the store.
type FreshnessReader interface {
	Watermark(ctx context.Context, f Feed) (time.Time, bool, error)
	// StoredTiers summarizes the org's progress rows updated at or after since: every row,
	// rows whose last_active_at is after their complete_through (activity not yet collected
	// when last seen), rows complete before closing (none when closing is zero), and rows of
	// projects enforcement holds at risk.
	StoredTiers(ctx context.Context, orgID string, since, closing time.Time) (StoredTiers, error)
}

// StoredTiers counts an org's progress rows per group and finds each group's oldest
// complete_through (zero when the group is empty).
type StoredTiers struct {
	All, Active, Closing, AtRisk                         int
	AllOldest, ActiveOldest, ClosingOldest, AtRiskOldest time.Time
}
