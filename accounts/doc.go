// Package accounts keeps the mapping project → (Stripe customer, plan) with its history, so
// that the plan in force for any project at any hour is known exactly.
//
// The history lives behind Store (account_history in ClickHouse, see accounts/chstore): each
// Record says "from valid_from on, this project belongs to this customer on this plan".
// Billing and enforcement read it through LoadTimelines and AssignmentsAt. Sources:
//
//   - Stripe (Sync): customers carry metadata neon_project_id (one or several project ids,
//     comma separated); their subscription in force names the plan through a price's
//     lookup_key (or its product's metadata neonmeter_plan). Sync pages through customers,
//     subscriptions (all statuses) and products with an explicit *client.API, derives each
//     project's timeline from Stripe's own timestamps, and appends only what differs from the
//     stored history.
//   - A CSV file (ParseCSV, Import) for platforms that keep the mapping elsewhere.
//   - Projects with no account get the configured default plan and are reported as unmapped.
//
// Rules (docs/plans-and-accounts.md states them in full):
//
//   - Hour rule: the plan in force for the hour bucket [H, H+1h) is the plan in force at the
//     instant H. A change at 14:00:00 governs the 14:00 bucket; a change at 14:20 takes effect
//     from the 15:00 bucket.
//   - valid_from is Stripe's instant: a subscription's start_date, the creation of the item
//     that put it on its plan (an upgrade that replaces the item), its ended_at. When Stripe
//     keeps no instant (a price swapped in place, a project moved between customers, a status
//     like unpaid), the time of the sync that first saw the change is used instead. History is
//     append-only: nothing is written at or before a project's latest recorded change.
//
// Decisions are pure functions with table tests (Derive, Diff, ParseCSV, Timelines); Sync and
// Import only fetch, call them and write.
package accounts
