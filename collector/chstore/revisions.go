package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// InsertRevisions writes revisions to usage_revisions in one batch. The table keeps one row per
// (key, old version), so logging the same replacement again after a crash adds nothing.
func (s *Store) InsertRevisions(ctx context.Context, revs []collector.Revision) error {
	if err := schema.InsertChecked(ctx, s.Conn, s.DB, revs, checkRevision, insertRevisionsQuery); err != nil {
		return fmt.Errorf("insert revisions: %w", err)
	}
	return nil
}

func checkRevision(r collector.Revision) error {
	if r.OrgID == "" || r.ProjectID == "" || r.Metric == "" || r.Hour.Unix() <= 0 {
		return fmt.Errorf("revision %s/%s/%s %s: empty key field", r.OrgID, r.ProjectID, r.Metric, r.Hour.UTC().Format(time.RFC3339))
	}
	return nil
}

func insertRevisionsQuery(revs []collector.Revision) schema.Query {
	return schema.Query{Name: "revisions.insert", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.usage_revisions (org_id, project_id, metric, hour, old_value, new_value, old_version, new_version, detected_at, run_id)",
		Rows: schema.RowsOf(revs, func(r collector.Revision) []any {
			return []any{r.OrgID, r.ProjectID, r.Metric, schema.UTC(r.Hour), r.OldValue, r.NewValue,
				r.OldVersion, r.NewVersion, schema.UTC(r.DetectedAt), r.RunID}
		})}
}

// revisionsQuery lists the organization's logged revisions of hours in [from, to),
// deduplicated. The product does not run it (the revision log is read by people and
// dashboards); the store's tests read with it (export_test.go), and the registry checks it on
// both engines.
func revisionsQuery(orgID string, from, to time.Time) schema.Query {
	return schema.Query{Name: "revisions.list", Kind: schema.KindSelect, Args: []any{orgID, schema.UTC(from), schema.UTC(to)}, SQL: `SELECT org_id, project_id, metric, hour, old_value, new_value, old_version, new_version, detected_at, run_id
FROM {db}.usage_revisions FINAL
WHERE org_id = ? AND hour >= ? AND hour < ?
ORDER BY project_id, metric, hour, old_version`}
}
