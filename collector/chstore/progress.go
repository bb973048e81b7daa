package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// ScanProgress calls fn with the latest progress of every project of the org, in project_id
// order. It streams: a million rows never sit in memory at once. org_id is a key column, so the
// filter cannot pick an older row of a project.
func (s *Store) ScanProgress(ctx context.Context, orgID string, fn func(collector.ProjectProgress) error) error {
	p := collector.ProjectProgress{OrgID: orgID}
	err := scanProgressQuery(orgID).Each(ctx, s.Conn, s.DB, func(row schema.Row) error {
		if err := row.Scan(&p.ProjectID, &p.CompleteThrough, &p.RereadThrough, &p.LastActiveAt); err != nil {
			return err
		}
		p.CompleteThrough, p.RereadThrough, p.LastActiveAt = schema.FromDB(p.CompleteThrough), schema.FromDB(p.RereadThrough), schema.FromDB(p.LastActiveAt)
		return fn(p)
	})
	if err != nil {
		return fmt.Errorf("progress org %s: %w", orgID, err)
	}
	return nil
}

func scanProgressQuery(orgID string) schema.Query {
	return schema.Query{Name: "progress.scan", Kind: schema.KindSelect, Args: []any{orgID}, SQL: `SELECT project_id, complete_through, reread_through, last_active_at
FROM {db}.collection_progress FINAL
WHERE org_id = ?
ORDER BY project_id`}
}

// ProgressOf returns the latest progress of these projects of the org, by project id; projects
// without progress are absent.
func (s *Store) ProgressOf(ctx context.Context, orgID string, projectIDs []string) (map[string]collector.ProjectProgress, error) {
	out := make(map[string]collector.ProjectProgress, len(projectIDs))
	err := schema.Chunks(projectIDs, func(chunk []string) error {
		if len(chunk) == 0 {
			return nil
		}
		return progressOfQuery(orgID, chunk).Each(ctx, s.Conn, s.DB, func(row schema.Row) error {
			p := collector.ProjectProgress{OrgID: orgID}
			var tier string
			if err := row.Scan(&p.ProjectID, &p.CompleteThrough, &p.FinalThrough, &p.RereadThrough, &p.LastActiveAt, &tier, &p.UpdatedAt, &p.RunID); err != nil {
				return err
			}
			p.CompleteThrough, p.FinalThrough, p.RereadThrough = schema.FromDB(p.CompleteThrough), schema.FromDB(p.FinalThrough), schema.FromDB(p.RereadThrough)
			p.LastActiveAt, p.UpdatedAt = schema.FromDB(p.LastActiveAt), schema.FromDB(p.UpdatedAt)
			p.Tier, _ = collector.ParseTier(tier)
			out[p.ProjectID] = p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("progress org %s: %w", orgID, err)
	}
	return out, nil
}

func progressOfQuery(orgID string, projectIDs []string) schema.Query {
	args := make([]any, 0, len(projectIDs)+1)
	args = append(args, orgID)
	for _, p := range projectIDs {
		args = append(args, p)
	}
	return schema.Query{Name: "progress.of", Kind: schema.KindSelect, Args: args, SQL: `SELECT project_id, complete_through, final_through, reread_through, last_active_at, tier, updated_at, run_id
FROM {db}.collection_progress FINAL
WHERE org_id = ? AND project_id IN (` + schema.InList(len(projectIDs)) + `)`}
}

// WriteProgress inserts progress rows in one batch; the row with the latest updated_at of a
// project wins. A row with an empty id, a complete_through, final_through or reread_through
// not on the hour or before 1970, one of the latter two after its complete_through, or an
// unknown tier refuses the whole batch.
func (s *Store) WriteProgress(ctx context.Context, rows []collector.ProjectProgress) error {
	if err := schema.InsertChecked(ctx, s.Conn, s.DB, rows, checkProgress, writeProgressQuery); err != nil {
		return fmt.Errorf("write progress: %w", err)
	}
	return nil
}

func checkProgress(p collector.ProjectProgress) error {
	id := fmt.Sprintf("progress %s/%s", p.OrgID, p.ProjectID)
	switch {
	case p.OrgID == "" || p.ProjectID == "" || p.RunID == "":
		return fmt.Errorf("%s: empty org, project or run id", id)
	case p.CompleteThrough.Unix() <= 0 || !p.CompleteThrough.Truncate(time.Hour).Equal(p.CompleteThrough):
		return fmt.Errorf("%s: complete_through %s is not the start of an hour after 1970", id, p.CompleteThrough.UTC().Format(time.RFC3339Nano))
	case p.FinalThrough.Unix() <= 0 || !p.FinalThrough.Truncate(time.Hour).Equal(p.FinalThrough):
		return fmt.Errorf("%s: final_through %s is not the start of an hour after 1970", id, p.FinalThrough.UTC().Format(time.RFC3339Nano))
	case p.FinalThrough.After(p.CompleteThrough):
		return fmt.Errorf("%s: final_through %s is after complete_through %s", id, p.FinalThrough.UTC().Format(time.RFC3339), p.CompleteThrough.UTC().Format(time.RFC3339))
	case p.RereadThrough.Unix() <= 0 || !p.RereadThrough.Truncate(time.Hour).Equal(p.RereadThrough) || p.RereadThrough.After(p.CompleteThrough):
		return fmt.Errorf("%s: reread_through %s is not the start of an hour after 1970 and at most complete_through %s", id, p.RereadThrough.UTC().Format(time.RFC3339Nano), p.CompleteThrough.UTC().Format(time.RFC3339))
	case p.UpdatedAt.Unix() <= 0:
		return fmt.Errorf("%s: updated_at must be after 1970", id)
	}
	if _, ok := collector.ParseTier(p.Tier.String()); !ok {
		return fmt.Errorf("%s: unknown tier %v", id, p.Tier)
	}
	return nil
}

func writeProgressQuery(rows []collector.ProjectProgress) schema.Query {
	return schema.Query{Name: "progress.write", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.collection_progress (org_id, project_id, complete_through, final_through, reread_through, last_active_at, tier, updated_at, run_id)",
		Rows: schema.RowsOf(rows, func(p collector.ProjectProgress) []any {
			return []any{p.OrgID, p.ProjectID, schema.UTC(p.CompleteThrough), schema.UTC(p.FinalThrough), schema.UTC(p.RereadThrough), schema.UTC(p.LastActiveAt), p.Tier.String(), schema.UTC(p.UpdatedAt), p.RunID}
		})}
}

// ScanAtRisk calls fn with every project of the org enforcement holds at risk
// (enforcement_at_risk, the enforcement stage's published table), in project_id order. The
// filter sits outside the FINAL subquery: at_risk and org_id are not key columns there, and a
// filter moved before the merge could pick a project's older row.
func (s *Store) ScanAtRisk(ctx context.Context, orgID string, fn func(projectID string) error) error {
	var id string
	err := atRiskQuery(orgID).Each(ctx, s.Conn, s.DB, func(row schema.Row) error {
		if err := row.Scan(&id); err != nil {
			return err
		}
		return fn(id)
	})
	if err != nil {
		return fmt.Errorf("at-risk projects org %s: %w", orgID, err)
	}
	return nil
}

func atRiskQuery(orgID string) schema.Query {
	return schema.Query{Name: "progress.at_risk", Kind: schema.KindSelect, Args: []any{orgID}, SQL: `SELECT project_id
FROM
(
    SELECT project_id, org_id, at_risk
    FROM {db}.enforcement_at_risk FINAL
)
WHERE at_risk = 1 AND org_id = ?
ORDER BY project_id`}
}

// StoredTiers summarizes the org's progress rows updated at or after since (see
// collector.FreshnessReader): two reads, one of the progress, one joined with the at-risk set.
func (s *Store) StoredTiers(ctx context.Context, orgID string, since, closing time.Time) (collector.StoredTiers, error) {
	var t collector.StoredTiers
	err := storedTiersQuery(orgID, since, closing).Each(ctx, s.Conn, s.DB, func(row schema.Row) error {
		var all, active, closingN uint64
		if err := row.Scan(&all, &t.AllOldest, &active, &t.ActiveOldest, &closingN, &t.ClosingOldest); err != nil {
			return err
		}
		t.All, t.Active, t.Closing = int(all), int(active), int(closingN)
		return nil
	})
	if err == nil {
		err = storedAtRiskQuery(orgID, since).Each(ctx, s.Conn, s.DB, func(row schema.Row) error {
			var n uint64
			if err := row.Scan(&n, &t.AtRiskOldest); err != nil {
				return err
			}
			t.AtRisk = int(n)
			return nil
		})
	}
	if err != nil {
		return t, fmt.Errorf("stored tiers org %s: %w", orgID, err)
	}
	t.AllOldest, t.ActiveOldest = emptyIsZero(t.All, t.AllOldest), emptyIsZero(t.Active, t.ActiveOldest)
	t.ClosingOldest, t.AtRiskOldest = emptyIsZero(t.Closing, t.ClosingOldest), emptyIsZero(t.AtRisk, t.AtRiskOldest)
	return t, nil
}

// emptyIsZero is the zero time for an empty group, whatever min() of nothing read back as.
func emptyIsZero(n int, t time.Time) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// storedTiersQuery counts the org's recent progress rows and finds the oldest complete_through:
// of all, of those with activity after it, and of those before closing (a zero closing counts
// none). updated_at is not a key column, so its filter sits outside the FINAL subquery.
func storedTiersQuery(orgID string, since, closing time.Time) schema.Query {
	return schema.Query{Name: "progress.tiers", Kind: schema.KindSelect,
		Args: []any{schema.UTC(closing), schema.UTC(closing), orgID, schema.UTC(since)}, SQL: `SELECT count() AS projects, min(complete_through) AS oldest,
    countIf(last_active_at > complete_through) AS active, minIf(complete_through, last_active_at > complete_through) AS active_oldest,
    countIf(complete_through < ?) AS closing, minIf(complete_through, complete_through < ?) AS closing_oldest
FROM
(
    SELECT complete_through, last_active_at, updated_at
    FROM {db}.collection_progress FINAL
    WHERE org_id = ?
)
WHERE updated_at >= ?`}
}

// storedAtRiskQuery counts the org's recent progress rows of projects enforcement holds at
// risk and finds their oldest complete_through.
func storedAtRiskQuery(orgID string, since time.Time) schema.Query {
	return schema.Query{Name: "progress.at_risk_tier", Kind: schema.KindSelect, Args: []any{orgID, schema.UTC(since), orgID}, SQL: `SELECT count() AS projects, min(complete_through) AS oldest
FROM
(
    SELECT project_id, complete_through, updated_at
    FROM {db}.collection_progress FINAL
    WHERE org_id = ?
)
WHERE updated_at >= ? AND project_id IN
(
    SELECT project_id
    FROM
    (
        SELECT project_id, org_id, at_risk
        FROM {db}.enforcement_at_risk FINAL
    )
    WHERE at_risk = 1 AND org_id = ?
)`}
}
