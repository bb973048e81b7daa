-- Enforcement that holds (see docs/enforcement.md).
--
-- enforcement_state.gone: Neon answered 404 for the project (deleted but still mapped); cycles
-- skip it but for drift reads. prior: what the project had before enforcement changed it (its
-- quota and default compute settings when first managed, and the autoscaling range of each
-- compute enforcement throttled or capped), so a restore and a release give those back.
-- idle_over_max: idle computes above the plan's max CU, left alone until seen running.
ALTER TABLE {db}.enforcement_state{on_cluster} ADD COLUMN gone UInt8 DEFAULT 0;
ALTER TABLE {db}.enforcement_state{on_cluster} ADD COLUMN prior String DEFAULT '';
ALTER TABLE {db}.enforcement_state{on_cluster} ADD COLUMN idle_over_max UInt32 DEFAULT 0;

-- Append-only log of the circuit breaker: a trip (a cycle had more projects to newly suspend or
-- throttle than its cap) and an operator's acknowledgement (`neonmeter enforce ack-breaker`).
-- While the newest row (highest version) is a trip, no project is newly suspended or throttled.
CREATE TABLE IF NOT EXISTS {db}.enforcement_breaker{on_cluster}
(
    at        DateTime('UTC'),
    event     String,
    cycle_id  String,
    enforcing UInt32,
    cap       UInt32,
    version   UInt64
)
ENGINE = {engine:MergeTree}
ORDER BY version;
