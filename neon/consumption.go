package neon

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// v2 metrics (getConsumptionHistoryPerProjectV2).
const (
	MetricComputeUnitSeconds          = "compute_unit_seconds"
	MetricRootBranchBytesMonth        = "root_branch_bytes_month"
	MetricChildBranchBytesMonth       = "child_branch_bytes_month"
	MetricInstantRestoreBytesMonth    = "instant_restore_bytes_month"
	MetricPublicNetworkTransferBytes  = "public_network_transfer_bytes"
	MetricPrivateNetworkTransferBytes = "private_network_transfer_bytes"
	MetricExtraBranchesMonth          = "extra_branches_month"
	MetricSnapshotStorageBytesMonth   = "snapshot_storage_bytes_month"
)

// Legacy metrics (getConsumptionHistoryPerProject): flat fields of each timeframe.
const (
	MetricActiveTimeSeconds         = "active_time_seconds"
	MetricComputeTimeSeconds        = "compute_time_seconds"
	MetricWrittenDataBytes          = "written_data_bytes"
	MetricSyntheticStorageSizeBytes = "synthetic_storage_size_bytes"
	MetricDataStorageBytesHour      = "data_storage_bytes_hour"
	MetricLogicalSizeBytes          = "logical_size_bytes"
	MetricLogicalSizeBytesHour      = "logical_size_bytes_hour"
)

// V2Metrics returns the eight metrics of the v2 route, in the spec's order.
func V2Metrics() []string {
	return []string{
		MetricComputeUnitSeconds, MetricRootBranchBytesMonth, MetricChildBranchBytesMonth,
		MetricInstantRestoreBytesMonth, MetricPublicNetworkTransferBytes,
		MetricPrivateNetworkTransferBytes, MetricExtraBranchesMonth, MetricSnapshotStorageBytesMonth,
	}
}

// LegacyMetrics returns the seven metrics of the legacy route, in the spec's order.
func LegacyMetrics() []string {
	return []string{
		MetricActiveTimeSeconds, MetricComputeTimeSeconds, MetricWrittenDataBytes,
		MetricSyntheticStorageSizeBytes, MetricDataStorageBytesHour, MetricLogicalSizeBytes,
		MetricLogicalSizeBytesHour,
	}
}

// Granularity of consumption buckets.
type Granularity string

const (
	GranularityHourly  Granularity = "hourly"
	GranularityDaily   Granularity = "daily"
	GranularityMonthly Granularity = "monthly"
)

// EarliestFrom returns the earliest instant of consumption history Neon serves, 2024-03-01 UTC.
func EarliestFrom() time.Time { return time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC) }

// Consumption page sizes (projects per page).
const (
	DefaultConsumptionLimit = 100
	MaxConsumptionLimit     = 100
)

// ConsumptionQuery selects consumption history. Bounds must sit on the granularity's bucket
// edges in UTC (hour, midnight, first of month); To is exclusive.
type ConsumptionQuery struct {
	OrgID       string // required on v2, optional on the legacy route
	From, To    time.Time
	Granularity Granularity
	Metrics     []string // default: every metric of the route
	// ProjectIDs restricts the answer to these projects (at most 100, each once). A project
	// Neon returns that is not among them makes the page a bad response, and the listing ends
	// as soon as every one was returned (with Limit ≥ len(ProjectIDs) that is one request).
	ProjectIDs []string
	Limit      int // projects per page, 1–100, default 100
	// MaxPages ends the listing with ErrBadResponse after that many pages (a cursor that never
	// ends); default DefaultMaxPages.
	MaxPages int
	// Budget, when set, grants every attempt of the listing, retries included; an attempt it
	// refuses is not sent and the listing ends with ErrAttemptBudget.
	Budget *AttemptBudget
}

// ConsumptionPage is one page of projects. Cursor is what the next request sends; "" when the
// page is known to be the last (a full last page is only known as such by the next answer).
type ConsumptionPage struct {
	Projects []ProjectConsumption
	Cursor   string
}

// ProjectConsumption is one project's buckets, grouped by billing period.
type ProjectConsumption struct {
	ProjectID string
	Periods   []Period
}

// Period is a billing period: a calendar month, or part of one around a plan change.
type Period struct {
	ID          string
	Plan        string
	Start       time.Time
	End         time.Time // zero while the period is open
	Consumption []Timeframe
}

// Timeframe is one bucket. Metrics lists only what Neon reported: a missing metric is 0.
type Timeframe struct {
	Start, End time.Time
	Metrics    []MetricValue
}

// MetricValue is one metric of a bucket in the metric's raw unit.
type MetricValue struct {
	Name  string
	Value int64
}

// ConsumptionV2 pages through GET /consumption_history/v2/projects. On a terminal error it
// yields (nil, err) once and stops; see the package doc for retries and decode rules.
func (c *Client) ConsumptionV2(ctx context.Context, q ConsumptionQuery) iter.Seq2[*ConsumptionPage, error] {
	return c.consumptionPages(ctx, q, false)
}

// ConsumptionLegacy pages through GET /consumption_history/projects (legacy plans). The flat
// fields of each timeframe become MetricValue entries named after the field (absent or zero
// fields omitted), so callers see the v2 shape.
func (c *Client) ConsumptionLegacy(ctx context.Context, q ConsumptionQuery) iter.Seq2[*ConsumptionPage, error] {
	return c.consumptionPages(ctx, q, true)
}

// ValidID reports whether s matches Neon's id pattern ^[a-z0-9-]{1,60}$ (orgs, projects,
// endpoints, branches). It is the one id check: every stage that takes an id from a file, a flag
// or Stripe metadata uses it.
func ValidID(s string) bool {
	if len(s) < 1 || len(s) > 60 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// lookback is how far back from Neon's clock each granularity reaches; a wider window can never
// succeed whatever the clock says.
func (g Granularity) fitsLookback(from, to time.Time) bool {
	switch g {
	case GranularityHourly:
		return to.Sub(from) <= 168*time.Hour
	case GranularityDaily:
		return to.Sub(from) <= 60*24*time.Hour
	default:
		return !to.After(from.AddDate(1, 0, 0))
	}
}

func (g Granularity) aligned(t time.Time) bool {
	if t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
		return false
	}
	switch g {
	case GranularityHourly:
		return true
	case GranularityDaily:
		return t.Hour() == 0
	default:
		return t.Hour() == 0 && t.Day() == 1
	}
}

// prepare validates q before any request and builds the fixed part of the query string.
func (q ConsumptionQuery) prepare(legacy bool) (*decodeOpts, url.Values, error) {
	known := V2Metrics()
	if legacy {
		known = LegacyMetrics()
	}
	switch {
	case !legacy && q.OrgID == "":
		return nil, nil, errors.New("consumption query: OrgID is required")
	case q.OrgID != "" && !ValidID(q.OrgID):
		return nil, nil, fmt.Errorf("consumption query: OrgID %q does not match ^[a-z0-9-]{1,60}$", q.OrgID)
	}
	switch q.Granularity {
	case GranularityHourly, GranularityDaily, GranularityMonthly:
	default:
		return nil, nil, fmt.Errorf("consumption query: Granularity %q is not hourly, daily or monthly", q.Granularity)
	}
	from, to := q.From.UTC(), q.To.UTC()
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return nil, nil, errors.New("consumption query: From and To are required")
	case !from.Before(to):
		return nil, nil, fmt.Errorf("consumption query: From %s is not before To %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case from.Before(EarliestFrom()):
		return nil, nil, fmt.Errorf("consumption query: From %s is before %s, the earliest history Neon keeps", from.Format(time.RFC3339), EarliestFrom().Format(time.RFC3339))
	case !q.Granularity.aligned(from):
		return nil, nil, fmt.Errorf("consumption query: From %s is not on a %s bucket edge (UTC)", from.Format(time.RFC3339Nano), q.Granularity)
	case !q.Granularity.aligned(to):
		return nil, nil, fmt.Errorf("consumption query: To %s is not on a %s bucket edge (UTC)", to.Format(time.RFC3339Nano), q.Granularity)
	case !q.Granularity.fitsLookback(from, to):
		return nil, nil, fmt.Errorf("consumption query: window %s–%s is longer than the %s lookback (168h, 60d, 1y)", from.Format(time.RFC3339), to.Format(time.RFC3339), q.Granularity)
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultConsumptionLimit
	}
	if limit < 1 || limit > MaxConsumptionLimit {
		return nil, nil, fmt.Errorf("consumption query: Limit %d is outside 1–%d", q.Limit, MaxConsumptionLimit)
	}
	metrics := known
	if len(q.Metrics) > 0 {
		metrics = make([]string, 0, len(q.Metrics))
		for _, m := range q.Metrics {
			i := slices.Index(known, m)
			if i < 0 {
				return nil, nil, fmt.Errorf("consumption query: metric %q is not one of the route's metrics", m)
			}
			if slices.Contains(metrics, known[i]) {
				return nil, nil, fmt.Errorf("consumption query: metric %q listed twice", m)
			}
			metrics = append(metrics, known[i])
		}
	}
	if q.MaxPages < 0 {
		return nil, nil, fmt.Errorf("consumption query: MaxPages %d is negative", q.MaxPages)
	}
	if len(q.ProjectIDs) > 100 {
		return nil, nil, fmt.Errorf("consumption query: %d ProjectIDs, at most 100", len(q.ProjectIDs))
	}
	for i, id := range q.ProjectIDs {
		if !ValidID(id) {
			return nil, nil, fmt.Errorf("consumption query: ProjectIDs: %q does not match ^[a-z0-9-]{1,60}$", id)
		}
		if slices.Contains(q.ProjectIDs[:i], id) {
			return nil, nil, fmt.Errorf("consumption query: ProjectIDs: %q listed twice", id)
		}
	}
	v := url.Values{}
	v.Set("from", from.Format(time.RFC3339))
	v.Set("to", to.Format(time.RFC3339))
	v.Set("granularity", string(q.Granularity))
	if q.OrgID != "" {
		v.Set("org_id", q.OrgID)
	}
	v["metrics"] = slices.Clone(metrics)
	if len(q.ProjectIDs) > 0 {
		v["project_ids"] = slices.Clone(q.ProjectIDs)
	}
	v.Set("limit", strconv.Itoa(limit))
	return &decodeOpts{legacy: legacy, granularity: q.Granularity, from: from, to: to, metrics: metrics, limit: limit}, v, nil
}

func (c *Client) consumptionPages(ctx context.Context, q ConsumptionQuery, legacy bool) iter.Seq2[*ConsumptionPage, error] {
	opts, query, err := q.prepare(legacy)
	if err != nil {
		return failed[ConsumptionPage](err)
	}
	l := listing[ConsumptionPage, ProjectConsumption]{
		what: "consumption v2", orgID: q.OrgID, route: routeConsumptionV2, bucket: c.consumption,
		query: query, limit: opts.limit, maxPages: q.MaxPages, want: len(q.ProjectIDs), budget: q.Budget,
		decode: func(body []byte) ([]ProjectConsumption, string, error) {
			p, err := decodeConsumption(body, opts)
			if err != nil {
				return nil, "", err
			}
			if err := onlyRequested(p.Projects, q.ProjectIDs); err != nil {
				return nil, "", err
			}
			return p.Projects, p.Cursor, nil
		},
		id: func(p ProjectConsumption) string { return p.ProjectID },
		page: func(items []ProjectConsumption, cursor string) *ConsumptionPage {
			return &ConsumptionPage{Projects: items, Cursor: cursor}
		},
	}
	if legacy {
		l.what, l.route = "consumption legacy", routeConsumptionLegacy
	}
	return paginate(ctx, c, l)
}

// onlyRequested refuses a page holding a project the request did not name (when it named any):
// the caller would store usage it did not ask for, and the listing's end, which counts the
// projects named, would come early.
func onlyRequested(projects []ProjectConsumption, requested []string) error {
	if len(requested) == 0 {
		return nil
	}
	for _, p := range projects {
		if !slices.Contains(requested, p.ProjectID) {
			return &DecodeError{Project: p.ProjectID, Reason: "project not among the project_ids requested"}
		}
	}
	return nil
}
