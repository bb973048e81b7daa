package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Revision records that a stored hourly value changed: Neon revised it, or it was
// re-collected with a different value. A row of usage_revisions.
type Revision struct {
	OrgID     string
	ProjectID string
	Metric    string
	Hour      time.Time
	OldValue  uint64
	NewValue  uint64
	// OldVersion is the version replaced; logging the same replacement twice (same key and
	// OldVersion) keeps one row.
	OldVersion uint64
	NewVersion uint64
	DetectedAt time.Time
	RunID      string
}

// InsertRevisions writes revisions to usage_revisions in one batch.
func InsertRevisions(ctx context.Context, conn driver.Conn, db string, revs []Revision) error {
	for _, r := range revs {
		if r.OrgID == "" || r.ProjectID == "" || r.Metric == "" || r.Hour.Unix() <= 0 {
			return fmt.Errorf("insert revisions: revision %s/%s/%s %s: empty key field", r.OrgID, r.ProjectID, r.Metric, r.Hour.UTC().Format(time.RFC3339))
		}
	}
	if err := insertRevisionsQuery(revs).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert revisions: %w", err)
	}
	return nil
}

func insertRevisionsQuery(revs []Revision) Query {
	rows := make([][]any, len(revs))
	for i, r := range revs {
		rows[i] = []any{r.OrgID, r.ProjectID, r.Metric, UTC(r.Hour), r.OldValue, r.NewValue,
			r.OldVersion, r.NewVersion, UTC(r.DetectedAt), r.RunID}
	}
	return Query{Name: "revisions.insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.usage_revisions (org_id, project_id, metric, hour, old_value, new_value, old_version, new_version, detected_at, run_id)"}
}

// Revisions returns the organization's logged revisions of hours in [from, to), deduplicated,
// ordered by project, metric, hour and old version.
func Revisions(ctx context.Context, conn driver.Conn, db, orgID string, from, to time.Time) ([]Revision, error) {
	rows, err := revisionsQuery(orgID, from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("revisions org %s: %w", orgID, err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		var r Revision
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

func revisionsQuery(orgID string, from, to time.Time) Query {
	return Query{Name: "revisions.list", Kind: KindSelect, Args: []any{orgID, UTC(from), UTC(to)}, SQL: `SELECT org_id, project_id, metric, hour, old_value, new_value, old_version, new_version, detected_at, run_id
FROM {db}.usage_revisions FINAL
WHERE org_id = ? AND hour >= ? AND hour < ?
ORDER BY project_id, metric, hour, old_version`}
}
