-- Usage facts pulled from Neon's consumption history. Values are Neon's raw integers in Neon's
-- raw units (CU-seconds, byte-hours, bytes, branch-hours); see docs/data-model.md.
--
-- Identity is (org_id, project_id, metric, hour): deterministic, so re-collecting an hour
-- writes a row with the same key and a higher version, which replaces the old one (FINAL at
-- read time, merges later). Nothing time-varying is in the key, and the partition derives from
-- the key, so two versions of a fact always share a partition and can replace each other.
CREATE TABLE IF NOT EXISTS {db}.usage_facts{on_cluster}
(
    org_id       String,
    project_id   String,
    metric       String,
    hour         DateTime('UTC'),
    value        UInt64,
    period_id    String,
    period_plan  String,
    collected_at DateTime('UTC'),
    version      UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(hour)
ORDER BY (org_id, project_id, metric, hour)
SETTINGS index_granularity = 1024;

-- The public contract for billing, enforcement, dashboards and finance: exactly one row, the
-- latest version, per (org_id, project_id, metric, hour). FINAL applies the same rule as
-- background merges (highest version wins, ties go to the last insert) and means the same on
-- 18.16 and current ClickHouse. Filters on the view apply after deduplication, so any column
-- may be filtered safely.
CREATE VIEW IF NOT EXISTS {db}.usage_hourly{on_cluster} AS
SELECT org_id, project_id, metric, hour, value, period_id, period_plan, collected_at
FROM {db}.usage_facts FINAL;

-- Daily and monthly facts from backfills beyond Neon's 168 h hourly window. Kept apart from
-- usage_facts so a bucket is never counted at two grains: the collector writes coarse facts
-- only for ranges it cannot get hourly.
CREATE TABLE IF NOT EXISTS {db}.usage_coarse{on_cluster}
(
    org_id       String,
    project_id   String,
    metric       String,
    granularity  Enum8('daily' = 1, 'monthly' = 2),
    bucket_start DateTime('UTC'),
    bucket_end   DateTime('UTC'),
    value        UInt64,
    period_id    String,
    period_plan  String,
    collected_at DateTime('UTC'),
    version      UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (org_id, project_id, metric, granularity, bucket_start);

-- Every observed change of a stored hourly value. The key ends in old_version, so logging the
-- same replacement again (a run that crashed after logging and is re-run) collapses to one row.
CREATE TABLE IF NOT EXISTS {db}.usage_revisions{on_cluster}
(
    org_id      String,
    project_id  String,
    metric      String,
    hour        DateTime('UTC'),
    old_value   UInt64,
    new_value   UInt64,
    old_version UInt64,
    new_version UInt64,
    detected_at DateTime('UTC'),
    run_id      String
)
ENGINE = {engine:ReplacingMergeTree(new_version)}
PARTITION BY toYYYYMM(hour)
ORDER BY (org_id, project_id, metric, hour, old_version);
