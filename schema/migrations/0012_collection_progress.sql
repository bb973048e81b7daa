-- How far each project is collected, for the budgeted collection cycle (docs/collector.md): every
-- hour starting before complete_through was collected from a full answer. A cycle writes a row
-- for each project it collected, after the project's facts, and only forward (a row never holds
-- an earlier complete_through or last_active_at than the one it replaces). Readers use FINAL or
-- argMax(..., updated_at). last_active_at is the compute_last_active_at Neon listed when the
-- project was collected (1970 = never active); tier is why it was collected.
CREATE TABLE IF NOT EXISTS {db}.collection_progress{on_cluster}
(
    org_id           String,
    project_id       String,
    complete_through DateTime('UTC'),
    last_active_at   DateTime('UTC'),
    tier             Enum8('active' = 1, 'at_risk' = 2, 'rolling' = 3, 'closing' = 4),
    updated_at       DateTime('UTC'),
    run_id           String
)
ENGINE = {engine:ReplacingMergeTree(updated_at)}
ORDER BY (org_id, project_id);
