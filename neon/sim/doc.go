// Package sim simulates a fleet of Neon projects behind Neon's management API v2, so that every
// test, demo and benchmark of neonmeter talks HTTP to something that answers as Neon does.
//
// # Model
//
// Four organizations (free, launch, scale and a legacy-plan org) share Config.Projects projects.
// Each project has a usage profile (idle, steady, bursty, runaway) and static parameters drawn
// from Config.Seed. The usage of any (project, hour) is a pure function of the seed, so 100,000
// projects cost a few megabytes: nothing hourly is stored. On top of that pure function sit a few
// explicit, append-only histories that only exist for projects something happened to:
//
//   - quota changes (PATCH /projects/{id}); a billing period's suspension schedule is derived by
//     walking its hours, so a suspension starts at the hour boundary after the counter reached
//     the quota, or after the PATCH that set a quota already exceeded;
//   - endpoint changes: when every endpoint is disabled, computes cannot run; the read_write
//     endpoint's autoscaling_limit_max_cu caps the CU of later hours;
//   - global revisions (Revise) that raise recent values, as Neon's late data does;
//   - client connections (TryWake, POST /debug/connect/{project_id}) that start computes unless
//     the quota holds them, and move compute_last_active_at; with Config.LaunchCaveat the launch
//     org's quota counters stay 0 (Neon API notes §6.3), so its quotas never hold;
//   - deleted projects (DeleteProject): 404 on their routes, gone from the project list.
//
// Every change takes effect at the next hour boundary, so no complete hour that may have been
// reported already is rewritten by a state change; only Revise and the provisional window below
// change reported values, and Value always returns what the API would report at that instant.
//
// # Fidelity rules
//
//   - Hourly buckets exist only for complete hours (end ≤ Now); daily and monthly buckets are the
//     sums of the hourly values in them (a current day or month is partial). That includes the
//     legacy level metrics synthetic_storage_size_bytes and logical_size_bytes, which Neon
//     probably reports as a level per bucket: summing keeps backfills consistent.
//   - A bucket whose end is less than 2 h before Now is reported at 92–99 % of its final value,
//     growing in 15-minute steps, like Neon's refresh.
//   - Zero metrics and empty buckets are omitted; a period without buckets is omitted.
//   - A bucket belongs to the billing period that contains its start. Periods are calendar
//     months (UTC) except for about 5 % of launch and scale projects, which change plan at a
//     non-round instant.
//   - Period counters (GET /projects/{id}) sum final hourly values of complete hours of the
//     current period; quota suspension compares the same sums with the quota, as Neon does
//     with its legacy counters (compute_time_seconds etc.; data_transfer_bytes counts public
//     network transfer).
//   - Every response, errors included, validates against Neon's OpenAPI spec; error bodies are
//     GeneralError and honour X-Request-ID.
//   - Rate limiting uses real time (token buckets like Neon's), not Config.Now, so a test with a
//     frozen clock still gets tokens back.
//
// Injected status faults (429, 500, 503, 423) answer before the handler runs, so a faulted
// mutation did not happen; truncated and malformed bodies are made after it, so it did, as
// when a real response is lost. Injected faults (SetFaults) that corrupt a 200 body either truncate it (invalid JSON) or add
// the top-level key "neonsim_fault"; InjectedFault recognizes both, for spectest's SkipResponse.
package sim
