// Package sim simulates a fleet of Neon projects behind Neon's management API v2, so that every
// test, demo and benchmark of neonmeter talks HTTP to something that answers as Neon does.
//
// # Model
//
// Four organizations (free, launch, scale and a legacy-plan org) share Config.Projects projects.
// Each project has a usage profile (idle, steady, bursty, runaway) and static parameters drawn
// from Config.Seed. The usage of any (project, hour) is a pure function of the seed, so 100,000
// projects cost 18 MB and 1,000,000 about 200 MB: nothing hourly is stored. On top of that pure
// function sit a few explicit, append-only histories that only exist for projects something
// happened to:
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
// # A big, mostly idle fleet
//
// Config.ActiveShare > 0 replaces the four profiles with a fleet-scale model (activity.go):
// about that share of all projects runs a compute in any hour, averaged over a day, with a
// daily peak at 15:00 UTC 30 % above the mean and a trough 30 % below; 15 % of the share is
// always on, and the rest of the fleet splits into diurnal projects (running about 30 % of
// hours) and dormant ones, most of the fleet, running about two hours a week, so idle for
// days. Profiles are then "always-on", "diurnal" and "dormant". 0 keeps the profile mix and
// every value of small fleets unchanged.
//
// What the project list says agrees with the consumption routes, so a collector may choose
// what to fetch from one list pass (Neon API notes §5.1): compute_last_active_at is the
// current time while a compute runs (the current hour has load, or a connection woke it), else
// the end of the last hour with active seconds, or the end of a wake, within the last 168 h
// (omitted when nothing ran in them; the simulator looks no further back); active_time and
// cpu_used_sec sum the final active_time_seconds and compute_time_seconds of the period's
// complete hours, like GET /projects/{id}'s counters; synthetic_storage_size is the current
// hour's synthetic_storage_size_bytes. The list keeps each project's running sums, so listing
// the fleet again only adds the hours completed since.
//
// A consumption call with project_ids walks only the requested projects, newest-created first;
// when no requested project follows the page it carries no pagination, so up to 100 ids with
// limit=100 cost exactly one call (Neon does not document its end of list; clients stop on a
// missing cursor or a short page, either of which ends it here).
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
//   - Rate limiting uses token buckets like Neon's on real time by default, not Config.Now, so a
//     test with a frozen clock still gets tokens back; Config.RateNow puts them on another clock,
//     as an accelerated one (internal/simclock, neonsim --time-scale) needs: limits then count
//     per simulated minute.
//
// Injected status faults (429, 500, 503, 423) answer before the handler runs, so a faulted
// mutation did not happen; truncated and malformed bodies are made after it, so it did, as
// when a real response is lost. Injected faults (SetFaults) that corrupt a 200 body either truncate it (invalid JSON) or add
// the top-level key "neonsim_fault"; InjectedFault recognizes both, for spectest's SkipResponse.
package sim
