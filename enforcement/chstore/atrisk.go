package chstore

import (
	"context"
	"fmt"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// WriteAtRisk writes changes of the at-risk flag in one batch; none writes nothing. The newest
// updated_at of a project wins: rows of one project need distinct times.
func (s *Store) WriteAtRisk(ctx context.Context, rows []enforcement.AtRiskRow) error {
	return writeChecked(ctx, s, "write enforcement at-risk set", rows, checkAtRisk, writeAtRiskQuery)
}

func writeAtRiskQuery(rows []enforcement.AtRiskRow) schema.Query {
	return schema.Query{Name: "enforcement.at_risk_write", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.enforcement_at_risk (project_id, org_id, at_risk, reason, updated_at, run_id)",
		Rows: schema.RowsOf(rows, func(r enforcement.AtRiskRow) []any {
			return []any{r.ProjectID, r.OrgID, flag(r.AtRisk), r.Reason, schema.UTC(r.UpdatedAt), r.RunID}
		})}
}

func checkAtRisk(r enforcement.AtRiskRow) error {
	if r.ProjectID == "" || r.UpdatedAt.IsZero() {
		return fmt.Errorf("project %q: need a project and a time", r.ProjectID)
	}
	return nil
}

// AtRiskSet returns the projects whose newest enforcement_at_risk row says at risk. The filter
// sits outside the FINAL subquery: at_risk is no key column, and a filter applied before the
// merge (18.16 moves WHERE to PREWHERE) could keep a project's older row.
func (s *Store) AtRiskSet(ctx context.Context) (map[string]enforcement.AtRiskRow, error) {
	return byProject(ctx, s, "enforcement at-risk set", atRiskSetQuery(), func(row schema.Row) (string, enforcement.AtRiskRow, error) {
		r := enforcement.AtRiskRow{AtRisk: true}
		err := row.Scan(&r.ProjectID, &r.OrgID, &r.Reason, &r.UpdatedAt, &r.RunID)
		r.UpdatedAt = r.UpdatedAt.UTC()
		return r.ProjectID, r, err
	})
}

func atRiskSetQuery() schema.Query {
	return schema.Query{Name: "enforcement.at_risk_set", Kind: schema.KindSelect, SQL: `SELECT project_id, org_id, reason, updated_at, run_id
FROM
(
    SELECT project_id, org_id, at_risk, reason, updated_at, run_id
    FROM {db}.enforcement_at_risk FINAL
)
WHERE at_risk = 1`}
}
