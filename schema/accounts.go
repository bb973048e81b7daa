package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Sources of account changes, as stored in account_history.source.
const (
	AccountSourceStripe = "stripe"
	AccountSourceCSV    = "csv"
)

// AccountChange is a row of account_history: from ValidFrom on, ProjectID belongs to
// CustomerID on Plan, until the project's next change.
type AccountChange struct {
	ProjectID string
	// ValidFrom is when the change took effect (stored to the second, UTC).
	ValidFrom time.Time
	// CustomerID is the Stripe customer (cus_…); empty when the project belongs to no one.
	CustomerID string
	// Plan is the catalog plan in force; empty when the customer has none (the default applies).
	Plan string
	// Source is AccountSourceStripe or AccountSourceCSV.
	Source string
	// SubscriptionID is the Stripe subscription that set the plan, if any.
	SubscriptionID string
	// Basis names where ValidFrom came from, like "subscription_start" or "observed".
	Basis string
	// RecordedAt is when neonmeter wrote the row.
	RecordedAt time.Time
	RunID      string
	// Version orders rewrites of the same (project, valid_from): the highest wins.
	Version uint64
}

// InsertAccountChanges writes changes in one batch; none writes nothing.
func InsertAccountChanges(ctx context.Context, conn driver.Conn, db string, changes []AccountChange) error {
	for _, c := range changes {
		if c.ProjectID == "" || (c.Source != AccountSourceStripe && c.Source != AccountSourceCSV) || c.ValidFrom.Unix() <= 0 {
			return fmt.Errorf("insert account changes: project %q: need a project, source stripe or csv and a time after 1970", c.ProjectID)
		}
	}
	if err := insertAccountChangesQuery(changes).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("insert account changes: %w", err)
	}
	return nil
}

func insertAccountChangesQuery(changes []AccountChange) Query {
	rows := make([][]any, len(changes))
	for i, c := range changes {
		rows[i] = []any{c.ProjectID, UTC(c.ValidFrom), c.CustomerID, c.Plan, c.Source, c.SubscriptionID, c.Basis, UTC(c.RecordedAt), c.RunID, c.Version}
	}
	return Query{Name: "accounts.insert", Kind: KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.account_history (project_id, valid_from, customer_id, plan, source, subscription_id, basis, recorded_at, run_id, version)"}
}

// AccountsAt returns, per project, the change in force at instant at: its latest change with
// valid_from <= at. Projects without one are absent. Nil projectIDs means every project.
func AccountsAt(ctx context.Context, conn driver.Conn, db string, projectIDs []string, at time.Time) (map[string]AccountChange, error) {
	out := map[string]AccountChange{}
	err := Chunks(projectIDs, func(chunk []string) error {
		return scanAccountChanges(ctx, conn, db, accountsAtQuery(chunk, projectIDs == nil, at), func(c AccountChange) { out[c.ProjectID] = c })
	})
	if err != nil {
		return nil, fmt.Errorf("accounts at %s: %w", at.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// The filter on valid_from is on a key column, shared by every version of a row, so it may sit
// under FINAL.
func accountsAtQuery(projectIDs []string, all bool, at time.Time) Query {
	where, args := projectFilter(projectIDs, all)
	args = append(args, UTC(at))
	return Query{Name: "accounts.at" + allSuffix(all), Kind: KindSelect, Args: args, SQL: `SELECT project_id, max(valid_from), argMax(customer_id, valid_from), argMax(plan, valid_from),
    argMax(source, valid_from), argMax(subscription_id, valid_from), argMax(basis, valid_from),
    argMax(recorded_at, valid_from), argMax(run_id, valid_from), argMax(version, valid_from)
FROM {db}.account_history FINAL
WHERE ` + where + `valid_from <= ?
GROUP BY project_id
ORDER BY project_id`}
}

// AccountHistory returns every change with valid_from < to of these projects (nil: of every
// project), ordered by project and time. Enough to resolve any instant before to.
func AccountHistory(ctx context.Context, conn driver.Conn, db string, projectIDs []string, to time.Time) ([]AccountChange, error) {
	var out []AccountChange
	err := Chunks(projectIDs, func(chunk []string) error {
		return scanAccountChanges(ctx, conn, db, accountHistoryQuery(chunk, projectIDs == nil, to), func(c AccountChange) { out = append(out, c) })
	})
	if err != nil {
		return nil, fmt.Errorf("account history: %w", err)
	}
	return out, nil
}

func accountHistoryQuery(projectIDs []string, all bool, to time.Time) Query {
	where, args := projectFilter(projectIDs, all)
	args = append(args, UTC(to))
	return Query{Name: "accounts.history" + allSuffix(all), Kind: KindSelect, Args: args, SQL: `SELECT project_id, valid_from, customer_id, plan, source, subscription_id, basis, recorded_at, run_id, version
FROM {db}.account_history FINAL
WHERE ` + where + `valid_from < ?
ORDER BY project_id, valid_from`}
}

// UsageProjects returns the projects with hourly usage in [from, to), sorted: the projects
// neonmeter meters, to find those without an account.
func UsageProjects(ctx context.Context, conn driver.Conn, db string, from, to time.Time) ([]string, error) {
	rows, err := usageProjectsQuery(from, to).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("usage projects: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("usage projects: scan: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage projects: %w", err)
	}
	return out, nil
}

func usageProjectsQuery(from, to time.Time) Query {
	return Query{Name: "accounts.usage_projects", Kind: KindSelect, Args: []any{UTC(from), UTC(to)}, SQL: `SELECT DISTINCT project_id
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
	return "project_id IN (" + InList(len(projectIDs)) + ") AND ", args
}

func allSuffix(all bool) string {
	if all {
		return "_all"
	}
	return ""
}

func scanAccountChanges(ctx context.Context, conn driver.Conn, db string, q Query, fn func(AccountChange)) error {
	rows, err := q.Select(ctx, conn, db)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c AccountChange
		if err := rows.Scan(&c.ProjectID, &c.ValidFrom, &c.CustomerID, &c.Plan, &c.Source, &c.SubscriptionID, &c.Basis, &c.RecordedAt, &c.RunID, &c.Version); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		c.ValidFrom, c.RecordedAt = c.ValidFrom.UTC(), FromDB(c.RecordedAt)
		fn(c)
	}
	return rows.Err()
}
