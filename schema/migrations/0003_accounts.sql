-- Which Stripe customer owns each Neon project, on which plan, as a history of changes; see
-- docs/plans-and-accounts.md.
--
-- A row says: from valid_from on (until the project's next row), project_id belongs to
-- customer_id on plan. An empty plan means the customer has no plan in force (the configured
-- default plan applies); an empty customer_id means the project belongs to no one (unmapped).
-- valid_from is the instant the change happened in the source (a Stripe subscription's start,
-- a plan item's creation, a cancellation's ended_at), or when a sync first saw it if the source
-- keeps no time; basis says which.
--
-- Identity is (project_id, valid_from): writing a change again replaces it (highest version,
-- then the last insert). "The plan in force at instant T" is the row with the greatest
-- valid_from <= T: one GROUP BY with argMax. The table holds a few rows per project (hundreds
-- of thousands in all), so it is neither partitioned nor ever pruned.
CREATE TABLE IF NOT EXISTS {db}.account_history{on_cluster}
(
    project_id      String,
    valid_from      DateTime('UTC'),
    customer_id     String,
    plan            String,
    source          Enum8('stripe' = 1, 'csv' = 2),
    subscription_id String,
    basis           String,
    recorded_at     DateTime('UTC'),
    run_id          String,
    version         UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (project_id, valid_from);
