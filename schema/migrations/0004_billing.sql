-- Billing: what neonmeter sent to Stripe, what it could not send, and what reconciliation
-- found; see docs/billing.md.
--
-- billing_ledger holds one row per (customer_id, target, hour, sink): target is the Stripe
-- meter's event_name (sink 'meter') or the legacy metered price id (sink 'usage_record').
-- Rows move through revisions: an 'intent' row (value, revision, identifier) is written BEFORE
-- the Stripe call and its outcome row ('pushed', 'failed' or 'late') after it. The version is
-- 2 × revision for an intent and 2 × revision + 1 for its outcome, so the newest step of the
-- newest revision wins under FINAL, and writing the same step again after a crash replaces the
-- row with itself. confirmed_value is the value Stripe last confirmed for the hour (carried
-- forward), so a late adjustment knows what the invoice already holds. The partition derives
-- from the key (hour), so every version of a row shares a partition.
CREATE TABLE IF NOT EXISTS {db}.billing_ledger{on_cluster}
(
    customer_id     String,
    target          String,
    hour            DateTime('UTC'),
    sink            Enum8('meter' = 1, 'usage_record' = 2),
    metric          String,
    value           Int64,
    confirmed_value Int64,
    revision        UInt32,
    identifier      String,
    status          Enum8('intent' = 1, 'pushed' = 2, 'failed' = 3, 'late' = 4),
    stripe_id       String,
    request_id      String,
    http_status     UInt16,
    recorded_at     DateTime('UTC'),
    run_id          String,
    version         UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, target, hour, sink);

-- Revisions Stripe can no longer take: the hour's invoice is finalized, or the hour is older
-- than the 35 days meter events accept. Finance settles them by hand (credit note or next
-- period). amount = new_value − old_value, in billing units. One row per (customer, target,
-- hour, sink, revision): recording the same revision again after a crash replaces it.
CREATE TABLE IF NOT EXISTS {db}.billing_late_adjustments{on_cluster}
(
    customer_id  String,
    target       String,
    hour         DateTime('UTC'),
    sink         Enum8('meter' = 1, 'usage_record' = 2),
    revision     UInt32,
    metric       String,
    period_start DateTime('UTC'),
    period_end   DateTime('UTC'),
    old_value    Int64,
    new_value    Int64,
    amount       Int64,
    reason       Enum8('finalized' = 1, 'too_old' = 2),
    detected_at  DateTime('UTC'),
    run_id       String
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, target, hour, sink, revision);

-- What each reconciliation found: one row per (customer, target, bucket) whose Stripe value
-- differs from the ledger's. bucket is an hour for meters and a billing period's start for
-- usage records (Stripe summarises those per period). Rows are never replaced: the history
-- of checks is the audit trail.
CREATE TABLE IF NOT EXISTS {db}.billing_drift{on_cluster}
(
    checked_at  DateTime('UTC'),
    run_id      String,
    customer_id String,
    target      String,
    sink        Enum8('meter' = 1, 'usage_record' = 2),
    bucket      DateTime('UTC'),
    expected    Int64,
    actual      Int64,
    drift       Int64
)
ENGINE = {engine:MergeTree}
PARTITION BY toYYYYMM(checked_at)
ORDER BY (checked_at, customer_id, target, bucket);
