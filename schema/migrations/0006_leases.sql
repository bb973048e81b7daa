-- Leases: one writer per job (billing, enforcement, accounts, retention); see
-- docs/architecture.md, "Leases". A lease itself is the table lease_<job>_<generation>, created
-- at run time because creating it is the atomic step that decides the holder (internal/lease/
-- chstore). This log keeps who held each job's lease, from when, and whom they superseded, for
-- audits after the fact ("which process pushed at 14:05?"). Rows are never replaced.
CREATE TABLE IF NOT EXISTS {db}.lease_events{on_cluster}
(
    at         DateTime('UTC'),
    job        String,
    generation UInt64,
    event      Enum8('acquired' = 1, 'released' = 2),
    host       String,
    pid        UInt32,
    run_id     String,
    ttl_ms     UInt64,
    superseded String
)
ENGINE = {engine:MergeTree}
PARTITION BY toYYYYMM(at)
ORDER BY (job, at, generation);
