package neon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Project list page sizes.
const (
	DefaultProjectsLimit = 400
	MaxProjectsLimit     = 400
)

// ListProjectsQuery selects projects. With an org API key Neon infers OrgID.
type ListProjectsQuery struct {
	OrgID  string
	Search string // partial name or id
	Limit  int    // projects per page, 1–400, default 400
}

// ProjectsPage is one page of the project list; Cursor as in ConsumptionPage.
type ProjectsPage struct {
	Projects []ProjectSummary
	Cursor   string
}

// ProjectSummary is a project as listed: settings, but no billing-period counters.
type ProjectSummary struct {
	ID, Name, OrgID, RegionID string
	CreatedAt, UpdatedAt      time.Time
	ComputeLastActiveAt       time.Time // zero when no compute was ever active
	Settings                  ProjectSettings
	DefaultEndpointSettings   DefaultEndpointSettings
}

// Project is one project with its current billing period's counters.
type Project struct {
	ID, Name, OrgID, RegionID string
	CreatedAt, UpdatedAt      time.Time
	ComputeLastActiveAt       time.Time
	// Counters of the current billing period; they lag (~15 min) and reset at period start.
	Counters                                     Counters
	ConsumptionPeriodStart, ConsumptionPeriodEnd time.Time
	Settings                                     ProjectSettings
	DefaultEndpointSettings                      DefaultEndpointSettings
	SubscriptionType                             string // owner.subscription_type, e.g. "scale_v3"
}

// Counters are a project's legacy consumption counters for the current period, the ones Neon's
// quotas are enforced on.
type Counters struct {
	ActiveTimeSeconds    int64
	ComputeTimeSeconds   int64
	WrittenDataBytes     int64
	DataTransferBytes    int64
	DataStorageBytesHour int64
}

// ProjectSettings holds the settings neonmeter reads and writes.
type ProjectSettings struct {
	Quota Quota
}

// Quota is a project's per-period quota; 0 means unlimited. When a period quota is reached Neon
// suspends every compute of the project until the period ends or the quota is raised or cleared.
type Quota struct {
	ActiveTimeSeconds  int64
	ComputeTimeSeconds int64
	WrittenDataBytes   int64
	DataTransferBytes  int64
	LogicalSizeBytes   int64 // per-branch size cap, never resets
}

// DefaultEndpointSettings apply to computes created later, not to existing ones.
type DefaultEndpointSettings struct {
	AutoscalingLimitMinCU float64 // ≥ 0.25; 0 = unset
	AutoscalingLimitMaxCU float64 // ≥ 0.25; 0 = unset
	SuspendTimeoutSeconds int64   // -1 never, 0 unset (Neon's default 300), else 60–604800
}

// ProjectUpdate is a PATCH of a project; only non-nil fields are sent.
type ProjectUpdate struct {
	// Quota is sent whole, every field (0 = unlimited): read the project, change the quota, send
	// it back, so a field the caller did not mean to touch keeps its value.
	Quota *Quota
	// DefaultEndpointSettings sends its non-zero fields only.
	DefaultEndpointSettings *DefaultEndpointSettings
}

type wireQuota struct {
	ActiveTimeSeconds  int64 `json:"active_time_seconds"`
	ComputeTimeSeconds int64 `json:"compute_time_seconds"`
	WrittenDataBytes   int64 `json:"written_data_bytes"`
	DataTransferBytes  int64 `json:"data_transfer_bytes"`
	LogicalSizeBytes   int64 `json:"logical_size_bytes"`
}

type wireEndpointSettings struct {
	AutoscalingLimitMinCU float64 `json:"autoscaling_limit_min_cu,omitempty"`
	AutoscalingLimitMaxCU float64 `json:"autoscaling_limit_max_cu,omitempty"`
	SuspendTimeoutSeconds int64   `json:"suspend_timeout_seconds,omitempty"`
}

type wireProject struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	OrgID                  string    `json:"org_id"`
	RegionID               string    `json:"region_id"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
	ComputeLastActiveAt    time.Time `json:"compute_last_active_at"`
	ActiveTimeSeconds      int64     `json:"active_time_seconds"`
	ComputeTimeSeconds     int64     `json:"compute_time_seconds"`
	WrittenDataBytes       int64     `json:"written_data_bytes"`
	DataTransferBytes      int64     `json:"data_transfer_bytes"`
	DataStorageBytesHour   int64     `json:"data_storage_bytes_hour"`
	ConsumptionPeriodStart time.Time `json:"consumption_period_start"`
	ConsumptionPeriodEnd   time.Time `json:"consumption_period_end"`
	Settings               *struct {
		Quota *wireQuota `json:"quota"`
	} `json:"settings"`
	DefaultEndpointSettings *wireEndpointSettings `json:"default_endpoint_settings"`
	Owner                   *struct {
		SubscriptionType string `json:"subscription_type"`
	} `json:"owner"`
}

func (w *wireProject) settings() (ProjectSettings, DefaultEndpointSettings) {
	var s ProjectSettings
	var d DefaultEndpointSettings
	if w.Settings != nil && w.Settings.Quota != nil {
		s.Quota = Quota(*w.Settings.Quota)
	}
	if w.DefaultEndpointSettings != nil {
		d = DefaultEndpointSettings(*w.DefaultEndpointSettings)
	}
	return s, d
}

func (w *wireProject) summary() ProjectSummary {
	s, d := w.settings()
	return ProjectSummary{
		ID: w.ID, Name: w.Name, OrgID: w.OrgID, RegionID: w.RegionID,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, ComputeLastActiveAt: w.ComputeLastActiveAt,
		Settings: s, DefaultEndpointSettings: d,
	}
}

func (w *wireProject) project() *Project {
	s, d := w.settings()
	p := &Project{
		ID: w.ID, Name: w.Name, OrgID: w.OrgID, RegionID: w.RegionID,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, ComputeLastActiveAt: w.ComputeLastActiveAt,
		Counters: Counters{
			ActiveTimeSeconds:    w.ActiveTimeSeconds,
			ComputeTimeSeconds:   w.ComputeTimeSeconds,
			WrittenDataBytes:     w.WrittenDataBytes,
			DataTransferBytes:    w.DataTransferBytes,
			DataStorageBytesHour: w.DataStorageBytesHour,
		},
		ConsumptionPeriodStart:  w.ConsumptionPeriodStart,
		ConsumptionPeriodEnd:    w.ConsumptionPeriodEnd,
		Settings:                s,
		DefaultEndpointSettings: d,
	}
	if w.Owner != nil {
		p.SubscriptionType = w.Owner.SubscriptionType
	}
	return p
}

// maxProjectName bounds a project's name in bytes: Neon's limit is 256 characters, of up to 4
// bytes each.
const maxProjectName = 1024

// validate checks what every caller relies on; the spec requires far more, which Neon provides.
func (w *wireProject) validate() error {
	if !ValidID(w.ID) {
		return &DecodeError{Project: clip([]byte(w.ID)), Reason: "project id missing or not matching ^[a-z0-9-]{1,60}$"}
	}
	if w.OrgID != "" && !ValidID(w.OrgID) {
		return &DecodeError{Project: w.ID, Reason: fmt.Sprintf("org_id %q does not match ^[a-z0-9-]{1,60}$", clip([]byte(w.OrgID)))}
	}
	// Names and regions are copied into logs, reports and rows: a hostile list must not make
	// them megabytes long (Neon itself caps names at 256 characters).
	if len(w.Name) > maxProjectName {
		return &DecodeError{Project: w.ID, Reason: fmt.Sprintf("name of %d bytes, over %d", len(w.Name), maxProjectName)}
	}
	if w.RegionID != "" && !ValidID(w.RegionID) {
		return &DecodeError{Project: w.ID, Reason: fmt.Sprintf("region_id %q does not match ^[a-z0-9-]{1,60}$", clip([]byte(w.RegionID)))}
	}
	if w.Settings != nil && w.Settings.Quota != nil {
		q := w.Settings.Quota
		if q.ActiveTimeSeconds < 0 || q.ComputeTimeSeconds < 0 || q.WrittenDataBytes < 0 || q.DataTransferBytes < 0 || q.LogicalSizeBytes < 0 {
			return &DecodeError{Project: w.ID, Reason: "negative quota"}
		}
	}
	// Counters are usage, held to the rule of consumption values: a negative one is corrupt.
	for _, c := range []struct {
		name string
		v    int64
	}{{"active_time_seconds", w.ActiveTimeSeconds}, {"compute_time_seconds", w.ComputeTimeSeconds},
		{"written_data_bytes", w.WrittenDataBytes}, {"data_transfer_bytes", w.DataTransferBytes},
		{"data_storage_bytes_hour", w.DataStorageBytesHour}} {
		if c.v < 0 {
			return &DecodeError{Project: w.ID, Reason: fmt.Sprintf("%s %d is negative", c.name, c.v)}
		}
	}
	if d := w.DefaultEndpointSettings; d != nil {
		if bad := badCompute(d.AutoscalingLimitMinCU, d.AutoscalingLimitMaxCU, d.SuspendTimeoutSeconds); bad != "" {
			return &DecodeError{Project: w.ID, Reason: "default_endpoint_settings: " + bad}
		}
	}
	return nil
}

// badCompute names a compute setting Neon sent outside the spec's domain (CU 0 when unset, else
// positive; suspend timeout -1 for never, else not negative), or returns "".
func badCompute(minCU, maxCU float64, suspend int64) string {
	switch {
	case minCU < 0:
		return fmt.Sprintf("autoscaling_limit_min_cu %v is negative", minCU)
	case maxCU < 0:
		return fmt.Sprintf("autoscaling_limit_max_cu %v is negative", maxCU)
	case suspend < -1:
		return fmt.Sprintf("suspend_timeout_seconds %d is below -1", suspend)
	}
	return ""
}

// decodeJSON decodes a small body with encoding/json (only consumption pages need the fast
// decoder); any failure is an ErrBadResponse.
func decodeJSON(body []byte, what string, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		de := &DecodeError{Reason: "decode " + what + ": " + err.Error()}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			de.Offset = int(se.Offset)
		}
		return de
	}
	return nil
}

// ListProjects pages through GET /projects with the pagination rules of the package doc; a page
// with unavailable_project_ids is incomplete and retried.
func (c *Client) ListProjects(ctx context.Context, q ListProjectsQuery) iter.Seq2[*ProjectsPage, error] {
	limit := q.Limit
	if limit == 0 {
		limit = DefaultProjectsLimit
	}
	switch {
	case limit < 1 || limit > MaxProjectsLimit:
		return failed[ProjectsPage](fmt.Errorf("list projects: Limit %d is outside 1–%d", q.Limit, MaxProjectsLimit))
	case q.OrgID != "" && !ValidID(q.OrgID):
		return failed[ProjectsPage](fmt.Errorf("list projects: OrgID %q does not match ^[a-z0-9-]{1,60}$", q.OrgID))
	}
	query := url.Values{"limit": {strconv.Itoa(limit)}}
	if q.OrgID != "" {
		query.Set("org_id", q.OrgID)
	}
	if q.Search != "" {
		query.Set("search", q.Search)
	}
	return paginate(ctx, c, listing[ProjectsPage, ProjectSummary]{
		what: "list projects", orgID: q.OrgID, route: routeProjects, bucket: c.general, query: query, limit: limit,
		decode: decodeProjectsPage,
		id:     func(p ProjectSummary) string { return p.ID },
		page: func(items []ProjectSummary, cursor string) *ProjectsPage {
			return &ProjectsPage{Projects: items, Cursor: cursor}
		},
	})
}

// decodeProjectsPage reads one page of the project list: its projects and cursor.
func decodeProjectsPage(body []byte) ([]ProjectSummary, string, error) {
	var w struct {
		Projects              *[]wireProject `json:"projects"`
		UnavailableProjectIDs []string       `json:"unavailable_project_ids"`
		Pagination            *struct {
			Cursor string `json:"cursor"`
		} `json:"pagination"`
	}
	if err := decodeJSON(body, "project list", &w); err != nil {
		return nil, "", err
	}
	if w.Projects == nil {
		return nil, "", &DecodeError{Reason: `"projects" missing`}
	}
	if n := len(w.UnavailableProjectIDs); n > 0 {
		return nil, "", &pageError{reason: reasonIncompletePage, detail: fmt.Sprintf("%d projects unavailable (first %q)", n, clip([]byte(w.UnavailableProjectIDs[0])))}
	}
	projects := make([]ProjectSummary, 0, len(*w.Projects))
	for i := range *w.Projects {
		wp := &(*w.Projects)[i]
		if err := wp.validate(); err != nil {
			return nil, "", err
		}
		projects = append(projects, wp.summary())
	}
	var cursor string
	if w.Pagination != nil {
		cursor = w.Pagination.Cursor
	}
	// The cursor goes into the next request: the same bound as a consumption page's.
	if !validCursor([]byte(cursor)) {
		return nil, "", &DecodeError{Reason: fmt.Sprintf("cursor %q is longer than %d bytes or not printable ASCII", clip([]byte(cursor)), maxCursor)}
	}
	return projects, cursor, nil
}

// GetProject reads one project with its current period's counters.
func (c *Client) GetProject(ctx context.Context, projectID string) (*Project, error) {
	if !ValidID(projectID) {
		return nil, fmt.Errorf("get project: project id %q does not match ^[a-z0-9-]{1,60}$", projectID)
	}
	rq := &request{method: http.MethodGet, route: routeProject, path: "/projects/" + projectID, bucket: c.general, projectID: projectID}
	var p *Project
	err := c.do(ctx, rq, func(body []byte) (err error) {
		p, _, err = decodeProject(body, "project")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get project %s: %w", projectID, err)
	}
	return p, nil
}

// UpdateProject patches a project's quota and/or default endpoint settings. It returns the
// project and the operations Neon started; wait for them (WaitOperations) before the next
// mutation of the project. Retried only on 423 and 503, never after a network error.
func (c *Client) UpdateProject(ctx context.Context, projectID string, u ProjectUpdate) (*Project, []Operation, error) {
	if !ValidID(projectID) {
		return nil, nil, fmt.Errorf("update project: project id %q does not match ^[a-z0-9-]{1,60}$", projectID)
	}
	var body struct {
		Project struct {
			Settings *struct {
				Quota wireQuota `json:"quota"`
			} `json:"settings,omitempty"`
			DefaultEndpointSettings *wireEndpointSettings `json:"default_endpoint_settings,omitempty"`
		} `json:"project"`
	}
	if u.Quota == nil && u.DefaultEndpointSettings == nil {
		return nil, nil, fmt.Errorf("update project %s: nothing to update", projectID)
	}
	if q := u.Quota; q != nil {
		if q.ActiveTimeSeconds < 0 || q.ComputeTimeSeconds < 0 || q.WrittenDataBytes < 0 || q.DataTransferBytes < 0 || q.LogicalSizeBytes < 0 {
			return nil, nil, fmt.Errorf("update project %s: Quota fields must not be negative", projectID)
		}
		body.Project.Settings = &struct {
			Quota wireQuota `json:"quota"`
		}{Quota: wireQuota(*q)}
	}
	if d := u.DefaultEndpointSettings; d != nil {
		if err := checkComputeSettings(d.AutoscalingLimitMinCU, d.AutoscalingLimitMaxCU, d.SuspendTimeoutSeconds); err != nil {
			return nil, nil, fmt.Errorf("update project %s: DefaultEndpointSettings: %w", projectID, err)
		}
		if *d == (DefaultEndpointSettings{}) {
			return nil, nil, fmt.Errorf("update project %s: DefaultEndpointSettings has no field set", projectID)
		}
		w := wireEndpointSettings(*d)
		body.Project.DefaultEndpointSettings = &w
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("update project %s: encode: %w", projectID, err)
	}
	rq := &request{method: http.MethodPatch, route: routeProject, path: "/projects/" + projectID, body: raw, bucket: c.general, projectID: projectID}
	var (
		p   *Project
		ops []Operation
	)
	err = c.do(ctx, rq, func(body []byte) (err error) {
		p, ops, err = decodeProject(body, "project update")
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("update project %s: %w", projectID, err)
	}
	return p, ops, nil
}

// decodeProject decodes and checks the reply of a project read or update (what names it in
// errors): the project, and the operations an update started.
func decodeProject(body []byte, what string) (*Project, []Operation, error) {
	var w struct {
		Project    *wireProject    `json:"project"`
		Operations []wireOperation `json:"operations"`
	}
	if err := decodeJSON(body, what, &w); err != nil {
		return nil, nil, err
	}
	if w.Project == nil {
		return nil, nil, &DecodeError{Reason: `"project" missing`}
	}
	if err := w.Project.validate(); err != nil {
		return nil, nil, err
	}
	ops, err := operations(w.Operations)
	if err != nil {
		return nil, nil, err
	}
	return w.Project.project(), ops, nil
}

// checkComputeSettings applies the spec's bounds (0 = not sent).
func checkComputeSettings(minCU, maxCU float64, suspend int64) error {
	switch {
	case minCU != 0 && !(minCU >= 0.25):
		return fmt.Errorf("AutoscalingLimitMinCU %v below 0.25", minCU)
	case maxCU != 0 && !(maxCU >= 0.25):
		return fmt.Errorf("AutoscalingLimitMaxCU %v below 0.25", maxCU)
	case minCU != 0 && maxCU != 0 && minCU > maxCU:
		return fmt.Errorf("AutoscalingLimitMinCU %v above AutoscalingLimitMaxCU %v", minCU, maxCU)
	case suspend < -1 || suspend > 604800:
		return fmt.Errorf("SuspendTimeoutSeconds %d outside -1–604800", suspend)
	}
	return nil
}
