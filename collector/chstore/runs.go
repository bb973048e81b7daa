package chstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// WriteRun inserts a run row: the start row (OutcomeRunning) or the final row.
func (s *Store) WriteRun(ctx context.Context, r collector.Run) error {
	if err := checkRun(r); err != nil {
		return fmt.Errorf("write run %s: %w", r.RunID, err)
	}
	if err := writeRunQuery(r).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("write run %s: %w", r.RunID, err)
	}
	return nil
}

func checkRun(r collector.Run) error {
	if r.RunID == "" {
		return fmt.Errorf("empty run id")
	}
	if err := checkFeed(r.Endpoint, r.Granularity); err != nil {
		return err
	}
	switch r.Outcome {
	case collector.OutcomeRunning:
		if !r.FinishedAt.IsZero() {
			return fmt.Errorf("a running run has no finish time")
		}
	case collector.OutcomeSuccess, collector.OutcomeFailed, collector.OutcomeStopped, collector.OutcomeAbandoned:
		// The finish time is the row's version: it must beat the start row's epoch.
		if r.FinishedAt.Unix() <= 0 {
			return fmt.Errorf("a finished run needs its finish time")
		}
	default:
		return fmt.Errorf("outcome %q is not %s, %s, %s, %s or %s", r.Outcome, collector.OutcomeRunning, collector.OutcomeSuccess,
			collector.OutcomeFailed, collector.OutcomeStopped, collector.OutcomeAbandoned)
	}
	return nil
}

// checkFeed checks an endpoint and granularity pair; the Enum8 columns would refuse others
// with a less helpful error.
func checkFeed(ep collector.Endpoint, g collector.Granularity) error {
	if !ep.Valid() {
		return fmt.Errorf("endpoint %q is not %s or %s", ep, collector.EndpointV2, collector.EndpointLegacy)
	}
	if !g.Valid() {
		return fmt.Errorf("granularity %q is not %s, %s or %s", g, collector.GranularityHourly, collector.GranularityDaily, collector.GranularityMonthly)
	}
	return nil
}

func writeRunQuery(r collector.Run) schema.Query {
	return schema.Query{Name: "runs.write", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.collection_runs (run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at, pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error, host, pid, deadline_at)",
		Rows: [][]any{{r.RunID, r.OrgID, string(r.Endpoint), string(r.Granularity), schema.UTC(r.WindowFrom), schema.UTC(r.WindowTo), schema.UTC(r.StartedAt), schema.UTC(r.FinishedAt),
			r.Pages, r.Projects, r.ValuesFetched, r.RowsWritten, r.Revisions, r.Retries, r.Errors, r.DurationSeconds, string(r.Outcome), r.Error,
			r.Host, r.PID, schema.UTC(r.DeadlineAt)}}}
}

// Runs returns the latest row of every run of one org and endpoint started at or after since,
// oldest first.
func (s *Store) Runs(ctx context.Context, orgID string, ep collector.Endpoint, since time.Time) ([]collector.Run, error) {
	all, err := s.runs(ctx, since)
	if err != nil {
		return nil, err
	}
	var out []collector.Run
	for _, r := range all {
		if r.OrgID == orgID && r.Endpoint == ep {
			out = append(out, r)
		}
	}
	return out, nil
}

// LastRun returns the newest successful run of the feed in the last 30 days.
func (s *Store) LastRun(ctx context.Context, f collector.Feed) (collector.Run, bool, error) {
	runs, err := s.Runs(ctx, f.OrgID, f.Endpoint, time.Now().Add(-30*24*time.Hour))
	if err != nil {
		return collector.Run{}, false, err
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.After(runs[j].StartedAt) })
	for _, r := range runs {
		if r.Granularity == f.Granularity && r.Outcome == collector.OutcomeSuccess {
			return r, true, nil
		}
	}
	return collector.Run{}, false, nil
}

// runs returns the latest row of every run started at or after since, oldest first.
func (s *Store) runs(ctx context.Context, since time.Time) ([]collector.Run, error) {
	out, err := schema.All(ctx, runsQuery(since), s.Conn, s.DB, scanRun)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return out, nil
}

func scanRun(rows schema.Row) (collector.Run, error) {
	var (
		r                              collector.Run
		endpoint, granularity, outcome string
	)
	if err := rows.Scan(&r.RunID, &r.OrgID, &endpoint, &granularity, &r.WindowFrom, &r.WindowTo, &r.StartedAt, &r.FinishedAt,
		&r.Pages, &r.Projects, &r.ValuesFetched, &r.RowsWritten, &r.Revisions, &r.Retries, &r.Errors, &r.DurationSeconds,
		&outcome, &r.Error, &r.Host, &r.PID, &r.DeadlineAt); err != nil {
		return r, err
	}
	r.Endpoint, r.Granularity, r.Outcome = collector.Endpoint(endpoint), collector.Granularity(granularity), collector.Outcome(outcome)
	r.WindowFrom, r.WindowTo = schema.FromDB(r.WindowFrom), schema.FromDB(r.WindowTo)
	r.StartedAt, r.FinishedAt, r.DeadlineAt = schema.FromDB(r.StartedAt), schema.FromDB(r.FinishedAt), schema.FromDB(r.DeadlineAt)
	return r, nil
}

// The filter on started_at (not a key column) sits outside the FINAL subquery so it can never
// pick an older row of a run; the table holds a few rows per org and hour.
func runsQuery(since time.Time) schema.Query {
	return schema.Query{Name: "runs.list", Kind: schema.KindSelect, Args: []any{schema.UTC(since)}, SQL: `SELECT run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at,
    pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error,
    host, pid, deadline_at
FROM
(
    SELECT run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at,
        pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error,
        host, pid, deadline_at
    FROM {db}.collection_runs FINAL
)
WHERE started_at >= ?
ORDER BY started_at, run_id`}
}
