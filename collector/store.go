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
