package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
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
// [from, to), read through the usage_hourly view.
func (s *Store) UsageTotals(ctx context.Context, orgID string, from, to time.Time) (map[[2]string]uint64, error) {
	rows, err := usageTotalsQuery(orgID, from, to).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("usage totals org %s: %w", orgID, err)
	}
	defer rows.Close()
	out := map[[2]string]uint64{}
	for rows.Next() {
		var (
			project, metric string
			total           uint64
		)
		if err := rows.Scan(&project, &metric, &total); err != nil {
			return nil, fmt.Errorf("usage totals org %s: scan: %w", orgID, err)
		}
		out[[2]string{project, metric}] = total
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage totals org %s: %w", orgID, err)
	}
	return out, nil
}

// Revisions returns the organization's logged revisions of hours in [from, to), deduplicated,
// ordered by project, metric, hour and old version.
func (s *Store) Revisions(ctx context.Context, orgID string, from, to time.Time) ([]collector.Revision, error) {
	rows, err := revisionsQuery(orgID, from, to).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("revisions org %s: %w", orgID, err)
	}
	defer rows.Close()
	var out []collector.Revision
	for rows.Next() {
		var r collector.Revision
		if err := rows.Scan(&r.OrgID, &r.ProjectID, &r.Metric, &r.Hour, &r.OldValue, &r.NewValue,
			&r.OldVersion, &r.NewVersion, &r.DetectedAt, &r.RunID); err != nil {
			return nil, fmt.Errorf("revisions org %s: scan: %w", orgID, err)
		}
		r.Hour, r.DetectedAt = r.Hour.UTC(), r.DetectedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revisions org %s: %w", orgID, err)
	}
	return out, nil
}
