package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Granularities of Neon's consumption buckets, as stored in usage_coarse, collection_runs and
// collection_watermarks.
const (
	GranularityHourly  = "hourly"
	GranularityDaily   = "daily"
	GranularityMonthly = "monthly"
)

// CoarseFact is one daily or monthly usage value, from a backfill beyond Neon's 168-hour hourly
// window: a row of usage_coarse. Ranges covered by hourly facts must not also be written here.
type CoarseFact struct {
	OrgID     string
	ProjectID string
	Metric    string
	// Granularity is GranularityDaily or GranularityMonthly.
	Granularity string
	// BucketStart and BucketEnd are the bucket's bounds as Neon reported them, UTC; the end is
	// exclusive.
	BucketStart time.Time
	BucketEnd   time.Time
	// Value is in Neon's raw unit of the metric.
	Value       uint64
	PeriodID    string
	PeriodPlan  string
	CollectedAt time.Time
	// Version orders rows of the same key; the highest replaces the others.
	Version uint64
}

// CoarseKey identifies a coarse fact within one organization.
type CoarseKey struct {
	ProjectID   string
	Metric      string
	Granularity string
	BucketStart time.Time
}

// StoredCoarseFacts returns the latest stored value and version of every coarse fact of these
// projects whose bucket starts in [from, to), at any granularity. No projects means an empty
// result.
func StoredCoarseFacts(ctx context.Context, conn driver.Conn, db, orgID string, projectIDs []string, from, to time.Time) (map[CoarseKey]StoredFact, error) {
	out := map[CoarseKey]StoredFact{}
	for start := 0; start < len(projectIDs); start += MaxInList {
		chunk := projectIDs[start:min(start+MaxInList, len(projectIDs))]
		if err := readStoredCoarse(ctx, conn, db, storedCoarseQuery(orgID, chunk, from, to), out); err != nil {
			return nil, fmt.Errorf("stored coarse facts org %s: %w", orgID, err)
		}
	}
	return out, nil
}

func readStoredCoarse(ctx context.Context, conn driver.Conn, db string, q Query, out map[CoarseKey]StoredFact) error {
	rows, err := q.Select(ctx, conn, db)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k CoarseKey
			f StoredFact
		)
		if err := rows.Scan(&k.ProjectID, &k.Metric, &k.Granularity, &k.BucketStart, &f.Value, &f.Version); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		k.BucketStart = k.BucketStart.UTC()
		out[k] = f
	}
	return rows.Err()
}

func storedCoarseQuery(orgID string, projectIDs []string, from, to time.Time) Query {
	args := []any{orgID}
	for _, p := range projectIDs {
		args = append(args, p)
	}
	args = append(args, UTC(from), UTC(to))
	return Query{Name: "coarse.stored", Kind: KindSelect, Args: args, SQL: `SELECT project_id, metric, granularity, bucket_start, value, version
FROM {db}.usage_coarse FINAL
WHERE org_id = ? AND project_id IN (` + InList(len(projectIDs)) + `) AND bucket_start >= ? AND bucket_start < ?`}
}

// InsertCoarseFacts writes coarse facts to usage_coarse in one batch; as with hourly facts a
// higher version replaces the stored row of the same key.
func InsertCoarseFacts(ctx context.Context, conn driver.Conn, db string, facts []CoarseFact) error {
	for _, f := range facts {
		if err := checkCoarse(f); err != nil {
			return fmt.Errorf("insert coarse facts: %w", err)
		}
	}
	if err := insertCoarseQuery(facts).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert coarse facts: %w", err)
	}
	return nil
}

func checkCoarse(f CoarseFact) error {
	id := fmt.Sprintf("coarse fact %s/%s/%s %s", f.OrgID, f.ProjectID, f.Metric, f.BucketStart.UTC().Format(time.RFC3339))
	switch {
	case f.OrgID == "" || f.ProjectID == "" || f.Metric == "":
		return fmt.Errorf("%s: empty org, project or metric", id)
	case f.Granularity != GranularityDaily && f.Granularity != GranularityMonthly:
		return fmt.Errorf("%s: granularity %q is not daily or monthly", id, f.Granularity)
	case f.BucketStart.Unix() <= 0 || !f.BucketEnd.After(f.BucketStart):
		return fmt.Errorf("%s: bucket must start after 1970 and end after its start", id)
	}
	return nil
}

func insertCoarseQuery(facts []CoarseFact) Query {
	rows := make([][]any, len(facts))
	for i, f := range facts {
		rows[i] = []any{f.OrgID, f.ProjectID, f.Metric, f.Granularity, UTC(f.BucketStart), UTC(f.BucketEnd),
			f.Value, f.PeriodID, f.PeriodPlan, UTC(f.CollectedAt), f.Version}
	}
	return Query{Name: "coarse.insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.usage_coarse (org_id, project_id, metric, granularity, bucket_start, bucket_end, value, period_id, period_plan, collected_at, version)"}
}
