package chstore

import (
	"context"
	"fmt"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/schema"
)

// Progress returns how far the collector has each project's hourly usage, from the collector's
// collection_progress (the newest row of each project). A collector from before that table
// writes no rows: enforcement then judges freshness by the org's hourly watermark.
func (s *Store) Progress(ctx context.Context) ([]enforcement.ProjectProgress, error) {
	var out []enforcement.ProjectProgress
	err := progressQuery().Each(ctx, s.conn, s.db, func(row schema.Row) error {
		var p enforcement.ProjectProgress
		if err := row.Scan(&p.OrgID, &p.ProjectID, &p.CompleteThrough); err != nil {
			return err
		}
		p.CompleteThrough = schema.FromDB(p.CompleteThrough)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collection progress: %w", err)
	}
	return out, nil
}

func progressQuery() schema.Query {
	return schema.Query{Name: "enforcement.progress", Kind: schema.KindSelect, SQL: `SELECT org_id, project_id, complete_through
FROM {db}.collection_progress FINAL`}
}
