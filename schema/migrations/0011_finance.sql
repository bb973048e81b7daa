-- Finance: the cost table (NEONMETER_COSTS_FILE) as ClickHouse reads it, so margin can be computed
-- next to usage; see docs/data-model.md ("Margin") and finance/.
--
-- Every load (neonmeter report, serve) writes the whole table with one version (the load's
-- time in nanoseconds); readers use only the rows of the newest version, so a metric or plan
-- removed from the file stops counting at the next load. Prices are integers of micro-units
-- (1e-6) of the currency per unit of `divisor` raw units: cost = floor(raw × price ÷ divisor),
-- computed as intDiv(raw, divisor) × price + intDiv(raw % divisor × price, divisor), which is
-- exact and cannot wrap while divisor × price < 2^63 (the loader refuses larger prices).
CREATE TABLE IF NOT EXISTS {db}.neon_unit_costs{on_cluster}
(
    metric       String,
    unit         String,
    divisor      UInt64,
    price_micros UInt64,
    currency     String,
    neon_plan    String,
    loaded_at    DateTime('UTC'),
    version      UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (metric, version);

-- Each plan's customer price per billing unit of a metric, as the catalog bills it (target is
-- the meter event name or legacy price id; round_up is the catalog's ceil rounding). Rows of
-- plan '' repeat the default plan's (NEONMETER_DEFAULT_PLAN), which account_history's empty
-- plan means. Revenue = units × price, units as billing rounds a month's total.
CREATE TABLE IF NOT EXISTS {db}.plan_unit_prices{on_cluster}
(
    plan         String,
    metric       String,
    target       String,
    unit         String,
    divisor      UInt64,
    round_up     UInt8,
    price_micros UInt64,
    currency     String,
    loaded_at    DateTime('UTC'),
    version      UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (plan, metric, version);
