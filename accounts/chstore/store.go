// Package chstore keeps the accounts stage's history in ClickHouse: account_history, and the
// read of usage_facts that finds metered projects. It implements accounts.Store.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/schema"
)

// Store is account_history in one database.
type Store struct{ schema.Tables }

var _ accounts.Store = (*Store)(nil)

// New returns the store of database on conn.
func New(conn driver.Conn, database string) *Store { return &Store{schema.NewTables(conn, database)} }

// Insert writes records in one batch; none writes nothing. A record without a project, a
// valid source or a time after 1970 refuses the whole batch.
func (s *Store) Insert(ctx context.Context, records []accounts.Record) error {
	if err := schema.InsertChecked(ctx, s.Conn, s.DB, records, checkRecord, insertQuery); err != nil {
		return fmt.Errorf("insert account changes: %w", err)
	}
	return nil
}

func checkRecord(r accounts.Record) error {
	if r.ProjectID == "" || !r.Source.Valid() || r.ValidFrom.Unix() <= 0 {
		return fmt.Errorf("project %q: need a project, source stripe or csv and a time after 1970", r.ProjectID)
	}
	return nil
}

func insertQuery(records []accounts.Record) schema.Query {
	return schema.Query{Name: "accounts.insert", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.account_history (project_id, valid_from, customer_id, plan, source, subscription_id, basis, recorded_at, run_id, version)",
		Rows: schema.RowsOf(records, func(r accounts.Record) []any {
			return []any{r.ProjectID, schema.UTC(r.ValidFrom), r.CustomerID, r.Plan, string(r.Source), r.SubscriptionID, string(r.Basis),
				schema.UTC(r.RecordedAt), r.RunID, r.Version}
		})}
}

// At returns, per project, the record in force at instant at: its latest with valid_from <=
// at. Projects without one are absent. Nil projectIDs means every project.
func (s *Store) At(ctx context.Context, projectIDs []string, at time.Time) (map[string]accounts.Record, error) {
	out := map[string]accounts.Record{}
	err := schema.Chunks(projectIDs, func(chunk []string) error {
		return s.scan(ctx, atQuery(chunk, projectIDs == nil, at), func(r accounts.Record) { out[r.ProjectID] = r })
	})
	if err != nil {
		return nil, fmt.Errorf("accounts at %s: %w", at.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// The filter on valid_from is on a key column, shared by every version of a row, so it may sit
// under FINAL.
func atQuery(projectIDs []string, all bool, at time.Time) schema.Query {
	where, args := projectFilter(projectIDs, all)
	args = append(args, schema.UTC(at))
	return schema.Query{Name: "accounts.at" + allSuffix(all), Kind: schema.KindSelect, Args: args, SQL: `SELECT project_id, max(valid_from), argMax(customer_id, valid_from), argMax(plan, valid_from),
    argMax(source, valid_from), argMax(subscription_id, valid_from), argMax(basis, valid_from),
    argMax(recorded_at, valid_from), argMax(run_id, valid_from), argMax(version, valid_from)
FROM {db}.account_history FINAL
WHERE ` + where + `valid_from <= ?
GROUP BY project_id
ORDER BY project_id`}
}

// History returns every record with valid_from < to of these projects (nil: of every
// project), ordered by project and time. Enough to resolve any instant before to.
func (s *Store) History(ctx context.Context, projectIDs []string, to time.Time) ([]accounts.Record, error) {
	var out []accounts.Record
	err := schema.Chunks(projectIDs, func(chunk []string) error {
		return s.scan(ctx, historyQuery(chunk, projectIDs == nil, to), func(r accounts.Record) { out = append(out, r) })
	})
	if err != nil {
		return nil, fmt.Errorf("account history: %w", err)
	}
	return out, nil
}

func historyQuery(projectIDs []string, all bool, to time.Time) schema.Query {
	where, args := projectFilter(projectIDs, all)
	args = append(args, schema.UTC(to))
	return schema.Query{Name: "accounts.history" + allSuffix(all), Kind: schema.KindSelect, Args: args, SQL: `SELECT project_id, valid_from, customer_id, plan, source, subscription_id, basis, recorded_at, run_id, version
FROM {db}.account_history FINAL
WHERE ` + where + `valid_from < ?
ORDER BY project_id, valid_from`}
}

// UsageProjects returns the projects with hourly usage in [from, to), sorted: the projects
// neonmeter meters, to find those without an account.
func (s *Store) UsageProjects(ctx context.Context, from, to time.Time) ([]string, error) {
	out, err := schema.All(ctx, usageProjectsQuery(from, to), s.Conn, s.DB, func(rows schema.Row) (string, error) {
		var p string
		err := rows.Scan(&p)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("usage projects: %w", err)
	}
	return out, nil
}

// The hourly facts are read directly, without FINAL, rather than through usage_hourly: which
// projects have a row does not depend on the version, and 18.16 would deduplicate the whole
// table behind the view before filtering on hour (docs/data-model.md, hot paths).
func usageProjectsQuery(from, to time.Time) schema.Query {
	return schema.Query{Name: "accounts.usage_projects", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to)}, SQL: `SELECT DISTINCT project_id
FROM {db}.usage_facts
WHERE hour >= ? AND hour < ?
ORDER BY project_id`}
}

// projectFilter returns "project_id IN (…) AND " and its arguments, or nothing for all.
func projectFilter(projectIDs []string, all bool) (string, []any) {
	if all {
		return "", nil
	}
	args := make([]any, len(projectIDs), len(projectIDs)+1)
	for i, p := range projectIDs {
		args[i] = p
	}
	return "project_id IN (" + schema.InList(len(projectIDs)) + ") AND ", args
}

func allSuffix(all bool) string {
	if all {
		return "_all"
	}
	return ""
}

func (s *Store) scan(ctx context.Context, q schema.Query, fn func(accounts.Record)) error {
	return q.Each(ctx, s.Conn, s.DB, func(rows schema.Row) error {
		var (
			r             accounts.Record
			source, basis string
		)
		if err := rows.Scan(&r.ProjectID, &r.ValidFrom, &r.CustomerID, &r.Plan, &source, &r.SubscriptionID, &basis, &r.RecordedAt, &r.RunID, &r.Version); err != nil {
			return err
		}
		r.Source, r.Basis = accounts.Source(source), accounts.Basis(basis)
		r.ValidFrom, r.RecordedAt = r.ValidFrom.UTC(), schema.FromDB(r.RecordedAt)
		fn(r)
		return nil
	})
}
