package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// coarseKey identifies a coarse fact within one organization.
type coarseKey struct {
	ProjectID   string
	Metric      string
	Granularity collector.Granularity
	BucketStart time.Time
}

// storedFact is the latest stored value of a fact and its version.
type storedFact struct {
	Value   uint64
	Version uint64
}

// LoadStoredCoarse records in the grid the stored coarse facts of one granularity whose bucket
// starts in [from, to).
func (s *Store) LoadStoredCoarse(ctx context.Context, g *collector.Grid, granularity collector.Granularity, from, to time.Time) error {
	m, err := s.storedCoarse(ctx, g.OrgID, g.Projects, from, to)
	if err != nil {
		return err
	}
	for k, v := range m {
		if k.Granularity == granularity {
			g.StoreByName(k.ProjectID, k.Metric, k.BucketStart, v.Value, v.Version)
		}
	}
	return nil
}

// storedCoarse returns the latest stored value and version of every coarse fact of these
// projects whose bucket starts in [from, to), at any granularity. No projects means an empty
// result.
func (s *Store) storedCoarse(ctx context.Context, orgID string, projectIDs []string, from, to time.Time) (map[coarseKey]storedFact, error) {
	out := map[coarseKey]storedFact{}
	for start := 0; start < len(projectIDs); start += schema.MaxInList {
		chunk := projectIDs[start:min(start+schema.MaxInList, len(projectIDs))]
		if err := s.readStoredCoarse(ctx, storedCoarseQuery(orgID, chunk, from, to), out); err != nil {
			return nil, fmt.Errorf("stored coarse facts org %s: %w", orgID, err)
		}
	}
	return out, nil
}

func (s *Store) readStoredCoarse(ctx context.Context, q schema.Query, out map[coarseKey]storedFact) error {
	return q.Each(ctx, s.Conn, s.DB, func(rows schema.Row) error {
		var (
			k           coarseKey
			granularity string
			f           storedFact
		)
		if err := rows.Scan(&k.ProjectID, &k.Metric, &granularity, &k.BucketStart, &f.Value, &f.Version); err != nil {
			return err
		}
		k.Granularity, k.BucketStart = collector.Granularity(granularity), k.BucketStart.UTC()
		out[k] = f
		return nil
	})
}

func storedCoarseQuery(orgID string, projectIDs []string, from, to time.Time) schema.Query {
	args := []any{orgID}
	for _, p := range projectIDs {
		args = append(args, p)
	}
	args = append(args, schema.UTC(from), schema.UTC(to))
	return schema.Query{Name: "coarse.stored", Kind: schema.KindSelect, Args: args, SQL: `SELECT project_id, metric, granularity, bucket_start, value, version
FROM {db}.usage_coarse FINAL
WHERE org_id = ? AND project_id IN (` + schema.InList(len(projectIDs)) + `) AND bucket_start >= ? AND bucket_start < ?`}
}

// InsertCoarseFacts writes coarse facts to usage_coarse in one batch; as with hourly facts a
// higher version replaces the stored row of the same key.
func (s *Store) InsertCoarseFacts(ctx context.Context, facts []collector.CoarseFact) error {
	if err := schema.InsertChecked(ctx, s.Conn, s.DB, facts, checkCoarse, insertCoarseQuery); err != nil {
		return fmt.Errorf("insert coarse facts: %w", err)
	}
	return nil
}

func checkCoarse(f collector.CoarseFact) error {
	id := fmt.Sprintf("coarse fact %s/%s/%s %s", f.OrgID, f.ProjectID, f.Metric, f.BucketStart.UTC().Format(time.RFC3339))
	switch {
	case f.OrgID == "" || f.ProjectID == "" || f.Metric == "":
		return fmt.Errorf("%s: empty org, project or metric", id)
	case !f.Granularity.Coarse():
		return fmt.Errorf("%s: granularity %q is not %s or %s", id, f.Granularity, collector.GranularityDaily, collector.GranularityMonthly)
	case f.BucketStart.Unix() <= 0 || !f.BucketEnd.After(f.BucketStart):
		return fmt.Errorf("%s: bucket must start after 1970 and end after its start", id)
	}
	return nil
}

func insertCoarseQuery(facts []collector.CoarseFact) schema.Query {
	return schema.Query{Name: "coarse.insert", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.usage_coarse (org_id, project_id, metric, granularity, bucket_start, bucket_end, value, period_id, period_plan, collected_at, version)",
		Rows: schema.RowsOf(facts, func(f collector.CoarseFact) []any {
			return []any{f.OrgID, f.ProjectID, f.Metric, string(f.Granularity), schema.UTC(f.BucketStart), schema.UTC(f.BucketEnd),
				f.Value, f.PeriodID, f.PeriodPlan, schema.UTC(f.CollectedAt), f.Version}
		})}
}
