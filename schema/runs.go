package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Consumption endpoints, as stored in collection_runs and collection_watermarks.
const (
	EndpointV2     = "v2"
	EndpointLegacy = "legacy"
)

// Outcomes of a collection run.
const (
	OutcomeRunning = "running"
	OutcomeSuccess = "success"
	OutcomeFailed  = "failed"
)

// Run is one collection run: a row of collection_runs. A run is written twice with the same
// RunID and StartedAt: at its start with Outcome running and a zero FinishedAt, and at its end
// with the final counts, outcome and FinishedAt, which replaces the start row.
type Run struct {
	RunID string
	OrgID string
	// Endpoint is EndpointV2 or EndpointLegacy.
	Endpoint string
	// Granularity is GranularityHourly, GranularityDaily or GranularityMonthly.
	Granularity string
	// WindowFrom and WindowTo bound the buckets requested, [from, to).
	WindowFrom time.Time
	WindowTo   time.Time
	StartedAt  time.Time
	// FinishedAt is zero while the run is running; it is the row's version (stored to the
	// second), so a final row replaces the start row.
	FinishedAt time.Time
	// Pages of the consumption endpoint fetched.
	Pages uint64
	// Projects seen in the pages.
	Projects uint64
	// ValuesFetched counts metric values in the responses.
	ValuesFetched uint64
	// RowsWritten counts rows inserted into usage_facts or usage_coarse.
	RowsWritten uint64
	// Revisions counts stored values that changed.
	Revisions uint64
	// Retries counts retried HTTP requests.
	Retries uint64
	// Errors counts failed requests and steps, retried or not.
	Errors uint64
	// DurationSeconds is the run's wall time in seconds.
	DurationSeconds float64
	// Outcome is OutcomeRunning, OutcomeSuccess or OutcomeFailed.
	Outcome string
	// Error is the error that failed the run, empty otherwise.
	Error string
}

// WriteRun inserts a run row: the start row (Outcome running) or the final row.
func WriteRun(ctx context.Context, conn driver.Conn, db string, r Run) error {
	if err := checkRun(r); err != nil {
		return fmt.Errorf("write run %s: %w", r.RunID, err)
	}
	if err := writeRunQuery(r).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("write run %s: %w", r.RunID, err)
	}
	return nil
}

func checkRun(r Run) error {
	if r.RunID == "" {
		return fmt.Errorf("empty run id")
	}
	if err := checkSource(r.Endpoint, r.Granularity); err != nil {
		return err
	}
	switch r.Outcome {
	case OutcomeRunning:
		if !r.FinishedAt.IsZero() {
			return fmt.Errorf("a running run has no finish time")
		}
	case OutcomeSuccess, OutcomeFailed:
		// The finish time is the row's version: it must beat the start row's epoch.
		if r.FinishedAt.Unix() <= 0 {
			return fmt.Errorf("a finished run needs its finish time")
		}
	default:
		return fmt.Errorf("outcome %q is not running, success or failed", r.Outcome)
	}
	return nil
}

func writeRunQuery(r Run) Query {
	return Query{Name: "runs.write", Kind: KindInsert,
		SQL: "INSERT INTO {db}.collection_runs (run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at, pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error)",
		Rows: [][]any{{r.RunID, r.OrgID, r.Endpoint, r.Granularity, UTC(r.WindowFrom), UTC(r.WindowTo), UTC(r.StartedAt), UTC(r.FinishedAt),
			r.Pages, r.Projects, r.ValuesFetched, r.RowsWritten, r.Revisions, r.Retries, r.Errors, r.DurationSeconds, r.Outcome, r.Error}}}
}

// Runs returns the latest row of every run started at or after since, oldest first.
func Runs(ctx context.Context, conn driver.Conn, db string, since time.Time) ([]Run, error) {
	rows, err := runsQuery(since).Select(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		if err := rows.Scan(&r.RunID, &r.OrgID, &r.Endpoint, &r.Granularity, &r.WindowFrom, &r.WindowTo, &r.StartedAt, &r.FinishedAt,
			&r.Pages, &r.Projects, &r.ValuesFetched, &r.RowsWritten, &r.Revisions, &r.Retries, &r.Errors, &r.DurationSeconds,
			&r.Outcome, &r.Error); err != nil {
			return nil, fmt.Errorf("runs: scan: %w", err)
		}
		r.WindowFrom, r.WindowTo = FromDB(r.WindowFrom), FromDB(r.WindowTo)
		r.StartedAt, r.FinishedAt = FromDB(r.StartedAt), FromDB(r.FinishedAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return out, nil
}

// The filter on started_at (not a key column) sits outside the FINAL subquery so it can never
// pick an older row of a run; the table holds a few rows per org and hour.
func runsQuery(since time.Time) Query {
	return Query{Name: "runs.list", Kind: KindSelect, Args: []any{UTC(since)}, SQL: `SELECT run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at,
    pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error
FROM
(
    SELECT run_id, org_id, endpoint, granularity, window_from, window_to, started_at, finished_at,
        pages, projects, values_fetched, rows_written, revisions, retries, errors, duration_seconds, outcome, error
    FROM {db}.collection_runs FINAL
)
WHERE started_at >= ?
ORDER BY started_at, run_id`}
}

// checkSource checks an endpoint and granularity pair; the Enum8 columns would refuse others
// with a less helpful error.
func checkSource(endpoint, granularity string) error {
	if endpoint != EndpointV2 && endpoint != EndpointLegacy {
		return fmt.Errorf("endpoint %q is not v2 or legacy", endpoint)
	}
	if granularity != GranularityHourly && granularity != GranularityDaily && granularity != GranularityMonthly {
		return fmt.Errorf("granularity %q is not hourly, daily or monthly", granularity)
	}
	return nil
}
