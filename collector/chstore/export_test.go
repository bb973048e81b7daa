package chstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

// Readers for tests only: the product writes these tables and reads them back through the
// collector's Store, or downstream through usage_hourly.

type (
	StoredValue = storedValue
	StoredFact  = storedFact
	CoarseKey   = coarseKey
)

// ScanStoredFacts calls fn with every stored version of every hourly fact of these projects
// and metrics in [from, to), the read behind LoadStored.
func (s *Store) ScanStoredFacts(ctx context.Context, orgID string, projectIDs, metrics []string, from, to time.Time, fn func(StoredValue)) error {
	return s.scanStored(ctx, orgID, projectIDs, metrics, from, to, fn)
}

// StoredCoarseFacts is the read behind LoadStoredCoarse, at every granularity.
func (s *Store) StoredCoarseFacts(ctx context.Context, orgID string, projectIDs []string, from, to time.Time) (map[CoarseKey]StoredFact, error) {
	return s.storedCoarse(ctx, orgID, projectIDs, from, to)
}

// UsageTotals returns sum(value) per (project, metric) of the organization's hourly facts in
// [from, to), read through the usage_hourly view; an error fails the test.
func (s *Store) UsageTotals(t testing.TB, orgID string, from, to time.Time) map[[2]string]uint64 {
	t.Helper()
	return chtest.Totals(t, s.Conn, s.DB, usageTotalsQuery(orgID, from, to))
}

// Revisions returns the organization's logged revisions of hours in [from, to), deduplicated,
// ordered by project, metric, hour and old version.
func (s *Store) Revisions(ctx context.Context, orgID string, from, to time.Time) ([]collector.Revision, error) {
	out, err := schema.All(ctx, revisionsQuery(orgID, from, to), s.Conn, s.DB, func(row schema.Row) (collector.Revision, error) {
		var r collector.Revision
		err := row.Scan(&r.OrgID, &r.ProjectID, &r.Metric, &r.Hour, &r.OldValue, &r.NewValue,
			&r.OldVersion, &r.NewVersion, &r.DetectedAt, &r.RunID)
		r.Hour, r.DetectedAt = r.Hour.UTC(), r.DetectedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("revisions org %s: %w", orgID, err)
	}
	return out, nil
}
