package chstore

import (
	"context"
	"fmt"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// InsertAudit appends records in one batch; none writes nothing.
func (s *Store) InsertAudit(ctx context.Context, recs []enforcement.AuditRecord) error {
	if err := insertAuditQuery(recs).Insert(ctx, s.conn, s.db); err != nil {
		return fmt.Errorf("insert enforcement audit: %w", err)
	}
	return nil
}

func insertAuditQuery(recs []enforcement.AuditRecord) schema.Query {
	return schema.Query{Name: "enforcement.audit_insert", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.enforcement_audit (at, cycle_id, project_id, plan, metric, usage, limit_value, level, action, reason, mode, before, after, operation_ids, outcome, error)",
		Rows: schema.RowsOf(recs, func(r enforcement.AuditRecord) []any {
			ops := r.OperationIDs
			if ops == nil {
				ops = []string{}
			}
			return []any{schema.UTC(r.At), r.CycleID, r.ProjectID, r.Plan, r.Metric, r.Usage, r.Limit, string(r.Level), r.Action, r.Reason,
				string(r.Mode), r.Before, r.After, ops, string(r.Outcome), r.Error}
		})}
}

// AuditOf returns a project's audit records, newest first, at most limit of them.
func (s *Store) AuditOf(ctx context.Context, projectID string, limit int) ([]enforcement.AuditRecord, error) {
	out, err := schema.All(ctx, auditOfQuery(projectID, limit), s.conn, s.db, func(row schema.Row) (enforcement.AuditRecord, error) {
		var r enforcement.AuditRecord
		var level, mode, outcome string
		err := row.Scan(&r.At, &r.CycleID, &r.ProjectID, &r.Plan, &r.Metric, &r.Usage, &r.Limit, &level, &r.Action, &r.Reason,
			&mode, &r.Before, &r.After, &r.OperationIDs, &outcome, &r.Error)
		r.At, r.Level, r.Mode, r.Outcome = r.At.UTC(), enforcement.Level(level), enforcement.Mode(mode), enforcement.Outcome(outcome)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit of project %s: %w", projectID, err)
	}
	return out, nil
}

func auditOfQuery(projectID string, limit int) schema.Query {
	return schema.Query{Name: "enforcement.audit_of", Kind: schema.KindSelect, Args: []any{projectID, uint64(max(limit, 1))}, SQL: `SELECT at, cycle_id, project_id, plan, metric, usage, limit_value, level, action, reason, mode, before, after, operation_ids, outcome, error
FROM {db}.enforcement_audit
WHERE project_id = ?
ORDER BY at DESC
LIMIT ?`}
}
