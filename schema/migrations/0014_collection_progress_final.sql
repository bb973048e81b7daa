-- Hours collected while Neon may still revise them (its provisional window, about two hours)
-- are not final: final_through is where a project's final hours end. Every hour starting before
-- it was read when Neon no longer revised it; hours between final_through and complete_through
-- were collected but may still change, so billing holds them (docs/collector.md). Rows written
-- before this column existed take complete_through less two hours, the default provisional
-- window, so their last hours are read once more before they are billed.
ALTER TABLE {db}.collection_progress{on_cluster}
    ADD COLUMN final_through DateTime('UTC') DEFAULT complete_through - INTERVAL 2 HOUR AFTER complete_through;

-- A project that stays active is collected through the provisional window only; reread_through
-- is the complete_through of its last call that re-read the lookback before the one before it
-- (a rolling call, or a priority call once a lookback), so Neon's late revisions reach it too.
-- Rows from before take their complete_through.
ALTER TABLE {db}.collection_progress{on_cluster}
    ADD COLUMN reread_through DateTime('UTC') DEFAULT complete_through AFTER final_through;
