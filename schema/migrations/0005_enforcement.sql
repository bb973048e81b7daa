-- Enforcement: what neonmeter last decided and applied per project, and an audit log of every
-- decision and action (see docs/enforcement.md).
--
-- enforcement_state holds one live row per project (ReplacingMergeTree, highest version wins,
-- read with FINAL). It is the controller's memory: the level last seen (so an alert and an audit
-- decision fire once per crossing, not once per cycle), since when the project is over a limit
-- (grace), a release by an operator for one period, and a fingerprint of the Neon settings last
-- applied or observed, so a cycle re-reads Neon only for projects whose target changed. It is
-- written after Neon confirmed a change: a crash in between leaves the old row, the next cycle
-- sees a target that differs, re-reads Neon and finds nothing left to do.
CREATE TABLE IF NOT EXISTS {db}.enforcement_state{on_cluster}
(
    project_id        String,
    period_start      DateTime('UTC'),
    plan              String,
    level             String,
    over_since        DateTime('UTC'),
    released_period   DateTime('UTC'),
    applied           String,
    endpoints_pending UInt8,
    observed_at       DateTime('UTC'),
    updated_at        DateTime('UTC'),
    version           UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY project_id;

-- Append-only log of decisions (a level crossing) and actions (a Neon mutation, planned in a
-- dry run, applied, failed or held back by the circuit breaker). before and after are the
-- settings as short text, operation_ids are Neon's.
CREATE TABLE IF NOT EXISTS {db}.enforcement_audit{on_cluster}
(
    at            DateTime('UTC'),
    cycle_id      String,
    project_id    String,
    plan          String,
    metric        String,
    usage         UInt64,
    limit_value   UInt64,
    level         String,
    action        String,
    reason        String,
    mode          String,
    before        String,
    after         String,
    operation_ids Array(String),
    outcome       String,
    error         String
)
ENGINE = {engine:MergeTree}
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, at);
