// Package neon is neonmeter's client of the Neon API v2: consumption history (v2 and legacy
// routes), projects with their counters and quotas, endpoints and operations.
//
// # Requests
//
// Every attempt carries "Authorization: Bearer <key>" and a fresh X-Request-ID, which every
// error keeps. Consumption queries are checked before any request: From before To, From not
// before 2024-03-01, both bounds on the granularity's bucket edges in UTC (hour, midnight, first
// of month), the window no longer than the granularity's lookback (hourly 168 h, daily 60 days,
// monthly 1 year), Limit 1–100, metrics known to the route, at most 100 project ids. The request
// always sends from/to in RFC 3339 UTC, granularity, metrics (all of the route's by default),
// limit, and org_id (required on v2).
//
// Two client-side token buckets (golang.org/x/time/rate) pace requests: one shared by both
// consumption routes (Neon's own limit is shared that way), one for every other route. Each runs
// 1 % below its configured rate, so a client set to Neon's own limit does not land requests a
// hair early and draw 429s. Waiting honours the context; an abandoned wait returns its token.
//
// # Retries
//
// GETs are retried on 429, 423, 503 and other 5xx answers, network errors, per-attempt timeouts
// and 2xx bodies that break a rule below (Neon's truncated or malformed bodies are transient).
// PATCH and POST are retried only on 423 and 503, which the spec calls always safe, and never
// after a network error, as the change may have happened. Other 4xx answers are final. Waits
// grow exponentially from MinBackoff with full jitter up to MaxBackoff; a Retry-After header
// (seconds or HTTP date) raises the wait, up to MaxBackoff. After MaxRetries the last error is
// returned: an *APIError (unwrapping to ErrRateLimited, ErrLocked, …) or an ErrBadResponse.
//
// A body larger than Config.MaxResponseBytes (default 64 MiB) fails the request at once, not
// retried, as an ErrBadResponse. Content-Length is only a hint: a claim above the limit fails
// before reading, and a body of unknown length grows in doubling buffers whose last is the
// limit, so reading a body never holds more than 1.5 × the limit in memory.
//
// # Pagination
//
// Pages are read until the pagination object or its cursor is absent or empty, a page is empty,
// or a page holds fewer projects than the limit. A page whose cursor was already seen (the one
// just sent included), or that holds a project an earlier page held, is a replayed page: the
// request is retried, and ErrBadResponse ends the iteration if the replay persists. It never
// stops early silently and never loops: beyond 10,000 pages (ConsumptionQuery.MaxPages) it
// fails with ErrBadResponse. A project list page with
// non-empty unavailable_project_ids is incomplete and retried the same way.
//
// # Decoding consumption pages
//
// Pages are decoded by a focused, strict decoder: it refuses repeated keys, keys in another case
// and invalid UTF-8, which encoding/json accepts silently (decode.go says why that matters more
// than its speed, about five times encoding/json's). Any violation is an ErrBadResponse
// (a *DecodeError naming project, period, timeframe, metric and byte offset where known), and
// like any bad body it is retried first (the rules hold for Neon's answers, so a violation is
// more likely a transient corruption than a lasting state). The rules:
//
//   - The body is one JSON value with nothing after it; a key repeated within one object is
//     rejected. Unknown keys are skipped, except in legacy timeframes (see below).
//   - projects, project_id, periods, period_id, period_plan, period_start, consumption,
//     timeframe_start, timeframe_end and (v2) metrics, metric_name and value are required;
//     pagination and period_end may be absent or null. Timestamps are RFC 3339.
//   - project_id matches ^[a-z0-9-]{1,60}$; a period_id appears once per project. period_id
//     and period_plan, copied onto every stored row, are at most 64 bytes of letters, digits,
//     '-', '_' and '.' (plans also spaces); a cursor is at most 2,048 bytes of printable ASCII.
//   - value is a JSON integer within int64 and not negative: a fraction, an exponent, a string,
//     a negative number or a number beyond int64 is rejected naming project, metric and
//     timeframe.
//   - A metric name that was not requested (including one Neon does not have) is rejected
//     naming it. A metric appears once per timeframe, a timeframe once per period.
//   - A timeframe ends after it starts and lies within the requested [From, To]. Hourly
//     timeframes start on the hour and last exactly one hour.
//   - Legacy timeframes: the requested flat fields become MetricValue entries named after the
//     field, absent or zero fields omitted. Other legacy metric fields are read and dropped,
//     because the spec makes four of them mandatory whatever was requested. Any other field is
//     an unknown metric and rejected.
//
// v2 values are kept as sent, zero included; a metric absent from a bucket is 0.
//
// # Wake risk
//
// UpdateEndpoint may start an idle compute on real Neon (to apply the configuration). It is
// counted in neonmeter_neon_wake_risk_requests_total; consumption calls never wake a compute.
//
// # Metrics
//
// On Config.Registerer: neonmeter_neon_api_requests_total{route,code},
// neonmeter_neon_api_retries_total{route,reason}, neonmeter_neon_api_request_duration_seconds{route},
// neonmeter_neon_api_throttle_wait_seconds_total{bucket} and
// neonmeter_neon_api_wake_risk_requests_total{route}. route is "METHOD /path/{template}", code an
// HTTP status or network/timeout; no label ever holds a project id or the key.
package neon
