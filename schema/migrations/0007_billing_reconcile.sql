-- Billing: values with nowhere to go in Stripe, and a record of every reconciliation; see
-- docs/billing.md.
--
-- A value whose customer has no subscription item on the legacy price is recorded 'unsendable'
-- and held (not re-sent as a new revision every cycle) until the subscription changes. Adding
-- an Enum value changes only metadata, on 18.16 as on current ClickHouse.
ALTER TABLE {db}.billing_ledger{on_cluster}
    MODIFY COLUMN status Enum8('intent' = 1, 'pushed' = 2, 'failed' = 3, 'late' = 4, 'unsendable' = 5);

-- One row per reconciliation (serve's nightly and pre-grace runs, and the command line's), even
-- when nothing drifted: serve decides from it when the next run is due and exports the newest
-- run's drift (its billing_drift rows) as gauges. error is empty for a run that finished.
-- drift_units is the sum of |drift| as a Float64, which cannot wrap.
CREATE TABLE IF NOT EXISTS {db}.billing_reconcile_runs{on_cluster}
(
    run_id      String,
    kind        Enum8('schedule' = 1, 'grace' = 2, 'cli' = 3),
    started_at  DateTime('UTC'),
    finished_at DateTime('UTC'),
    range_from  DateTime('UTC'),
    range_to    DateTime('UTC'),
    compared    UInt32,
    drifting    UInt32,
    unsettled   UInt32,
    drift_units Float64,
    repair      UInt8,
    error       String
)
ENGINE = {engine:MergeTree}
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, run_id);
