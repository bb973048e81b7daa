// Package plans is neonmeter's plan catalog: which plans a platform sells, what each allows
// and how each Neon metric is billed. One YAML file (NEONMETER_PLANS_FILE) holds it;
// plans/example.yaml encodes the usual Free, Pro and Enterprise table.
//
// For each plan the catalog gives:
//   - the Neon settings enforcement applies (autoscaling min and max CU, suspend timeout);
//   - a limit per metric: its kind (hard suspends at 100 %, soft throttles and bills the
//     overage, none only warns), its maximum in the metric's raw unit and the warning
//     thresholds in percent (80 and 100 unless the file says otherwise);
//   - per billed metric, the Stripe Billing Meter event name (or, for legacy usage-based
//     billing, the metered price id), the billing unit and so the divisor from raw units, and
//     the rounding rule.
//
// Limits and billing units are written with units ("100h", "25 CU-hour", "512 MB",
// "0.512 GB-month") that must suit the metric; Validate reports every problem at once, each
// naming the plan, the field and what is wrong. Everything here is pure: Load reads one file
// and nothing else does I/O.
//
// Rounding: Stripe takes whole numbers, so usage is pushed in whole billing units such that the
// running total over a billing period is always floor(Σ raw / divisor) (or the ceiling, with
// rounding: ceil). Each hour pushes Delta(cum_before, cum_after), the change of that rounded
// running total, so no unit is lost or counted twice over a period, however usage is spread
// across hours; see docs/plans-and-accounts.md.
package plans
