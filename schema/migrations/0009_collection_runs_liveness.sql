-- Collection runs say who ran them and by when they must end, so a run a dead process left
-- 'running' (kill -9, a crash) is recognised as abandoned once its deadline has passed, and a
-- run stopped by a shutdown is told apart from a failure (docs/collector.md).
ALTER TABLE {db}.collection_runs{on_cluster}
    MODIFY COLUMN outcome Enum8('running' = 1, 'success' = 2, 'failed' = 3, 'stopped' = 4, 'abandoned' = 5);

ALTER TABLE {db}.collection_runs{on_cluster} ADD COLUMN host String;

ALTER TABLE {db}.collection_runs{on_cluster} ADD COLUMN pid UInt32;

ALTER TABLE {db}.collection_runs{on_cluster} ADD COLUMN deadline_at DateTime('UTC');
