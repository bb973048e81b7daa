-- One row per collection run. A run writes a row when it starts (outcome 'running',
-- finished_at 1970-01-01) and another when it ends; finished_at is the version, so the final
-- row replaces the start row and a run that died keeps showing as 'running'.
CREATE TABLE IF NOT EXISTS {db}.collection_runs{on_cluster}
(
    run_id           String,
    org_id           String,
    endpoint         Enum8('v2' = 1, 'legacy' = 2),
    granularity      Enum8('hourly' = 1, 'daily' = 2, 'monthly' = 3),
    window_from      DateTime('UTC'),
    window_to        DateTime('UTC'),
    started_at       DateTime('UTC'),
    finished_at      DateTime('UTC'),
    pages            UInt64,
    projects         UInt64,
    values_fetched   UInt64,
    rows_written     UInt64,
    revisions        UInt64,
    retries          UInt64,
    errors           UInt64,
    duration_seconds Float64,
    outcome          Enum8('running' = 1, 'success' = 2, 'failed' = 3),
    error            String
)
ENGINE = {engine:ReplacingMergeTree(finished_at)}
ORDER BY run_id;

-- How far each (org, endpoint, granularity) is known complete: every bucket before
-- covered_until has been collected from a full, successful page set. The latest update wins.
CREATE TABLE IF NOT EXISTS {db}.collection_watermarks{on_cluster}
(
    org_id        String,
    endpoint      Enum8('v2' = 1, 'legacy' = 2),
    granularity   Enum8('hourly' = 1, 'daily' = 2, 'monthly' = 3),
    covered_until DateTime('UTC'),
    updated_at    DateTime('UTC')
)
ENGINE = {engine:ReplacingMergeTree(updated_at)}
ORDER BY (org_id, endpoint, granularity);
