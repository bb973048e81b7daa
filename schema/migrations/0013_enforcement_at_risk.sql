-- The projects enforcement finds near or over a limit on a plan with hard limits (a hard limit at
-- warning or over, or suspended), for the collector to keep freshest (see docs/enforcement.md).
-- Each full enforcement cycle writes a row only when a project's flag changes (enters: 1,
-- leaves: 0), so a steady fleet writes nothing; the newest row of a project is its state, read
-- with FINAL and filtered on at_risk (and org_id) outside it. reason is String, not
-- LowCardinality(String): ClickHouse 18.16 creates LowCardinality only with
-- allow_experimental_low_cardinality_type set.
CREATE TABLE IF NOT EXISTS {db}.enforcement_at_risk{on_cluster}
(
    project_id String,
    org_id     String,
    at_risk    UInt8,
    reason     String,
    updated_at DateTime('UTC'),
    run_id     String
)
ENGINE = {engine:ReplacingMergeTree(updated_at)}
ORDER BY project_id;
