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
	rows := make([][]any, len(recs))
	for i, r := range recs {
		ops := r.OperationIDs
		if ops == nil {
			ops = []string{}
		}
		rows[i] = []any{schema.UTC(r.At), r.CycleID, r.ProjectID, r.Plan, r.Metric, r.Usage, r.Limit, string(r.Level), r.Action, r.Reason,
			string(r.Mode), r.Before, r.After, ops, string(r.Outcome), r.Error}
	}
	return schema.Query{Name: "enforcement.audit_insert", Kind: schema.KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.enforcement_audit (at, cycle_id, project_id, plan, metric, usage, limit_value, level, action, reason, mode, before, after, operation_ids, outcome, error)"}
}

// AuditOf returns a project's audit records, newest first, at most limit of them.
func (s *Store) AuditOf(ctx context.Context, projectID string, limit int) ([]enforcement.AuditRecord, error) {
	rows, err := auditOfQuery(projectID, limit).Select(ctx, s.conn, s.db)
	if err != nil {
		return nil, fmt.Errorf("audit of project %s: %w", projectID, err)
	}
	defer rows.Close()
	var out []enforcement.AuditRecord
	for rows.Next() {
		var r enforcement.AuditRecord
		var level, mode, outcome string
		if err := rows.Scan(&r.At, &r.CycleID, &r.ProjectID, &r.Plan, &r.Metric, &r.Usage, &r.Limit, &level, &r.Action, &r.Reason,
			&mode, &r.Before, &r.After, &r.OperationIDs, &outcome, &r.Error); err != nil {
			return nil, fmt.Errorf("audit of project %s: scan: %w", projectID, err)
		}
		r.At, r.Level, r.Mode, r.Outcome = r.At.UTC(), enforcement.Level(level), enforcement.Mode(mode), enforcement.Outcome(outcome)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
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
