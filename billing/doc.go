// Package billing pushes metered usage to Stripe exactly once per value and proves it by
// reconciliation. docs/billing.md states the model in full; in short:
//
//   - What is pushed (Desired, pure): for each (Stripe customer, target, hour) outside the
//     provisional window, the customer's projects' raw usage of the metric, converted with the
//     plan in force at that hour. Whole units come from the period's running total: the hour's
//     value is Units(cum after) − Units(cum before), the running total counted from the start
//     of the billing period (the UTC calendar month). A revision of an early hour therefore
//     changes later hours' values too, and they are pushed again.
//   - Targets: a Billing Meter's event_name (sink "meter": one pre-aggregated hourly event per
//     customer and hour, the newest replacing the earlier) or a legacy metered price (sink
//     "usage_record": action=set at the hour's timestamp on the customer's subscription item).
//   - Ledger (ClickHouse billing_ledger): Plan (pure) compares the desired values with the
//     ledger and yields actions. An intent row (value, revision, identifier) is written before
//     the Stripe call, the outcome after. A restart resumes an unfinished intent with the same
//     identifier and Idempotency-Key; a new value always gets a new revision, so an identifier
//     is never sent with two values.
//   - Limits: one request at a time per (customer, target); a pace for meter events (default
//     500/s) and one for other requests (default 50/s), with 429 backoff; hours Stripe can no
//     longer change (finalized invoice, older than 35 days) become late adjustments for finance
//     instead of requests; a value with nowhere to go (no subscription item) is held, not
//     re-sent every cycle. Every sum is checked: an overflow is an error, never a value.
//   - Reconcile reads Stripe's summaries and stores the drift against what ClickHouse says,
//     and the run; serve runs it nightly and before each invoice grace ends (schedule.go).
//
// Boundaries: billing reads usage and keeps its ledger through the Store it declares
// (billing/chstore on ClickHouse), reads account history through accounts.Store, and talks to
// Stripe only through Sink (sends) and StripeReader (reads back), both implemented by
// StripeSink.
package billing
