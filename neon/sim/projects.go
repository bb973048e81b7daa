package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// JSON shapes of Neon's Project, ProjectListItem, Endpoint and Operation (only the fields the
// simulator models, plus everything the spec requires).

type apiQuota struct {
	ActiveTimeSeconds  int64 `json:"active_time_seconds,omitempty"`
	ComputeTimeSeconds int64 `json:"compute_time_seconds,omitempty"`
	WrittenDataBytes   int64 `json:"written_data_bytes,omitempty"`
	DataTransferBytes  int64 `json:"data_transfer_bytes,omitempty"`
	LogicalSizeBytes   int64 `json:"logical_size_bytes,omitempty"`
}

type apiSettings struct {
	Quota *apiQuota `json:"quota,omitempty"`
}

type apiDefaultEndpointSettings struct {
	AutoscalingLimitMinCU float64 `json:"autoscaling_limit_min_cu"`
	AutoscalingLimitMaxCU float64 `json:"autoscaling_limit_max_cu"`
	SuspendTimeoutSeconds int64   `json:"suspend_timeout_seconds"`
}

type apiProjectCommon struct {
	ID                          string                     `json:"id"`
	PlatformID                  string                     `json:"platform_id"`
	RegionID                    string                     `json:"region_id"`
	Name                        string                     `json:"name"`
	Provisioner                 string                     `json:"provisioner"`
	DefaultEndpointSettings     apiDefaultEndpointSettings `json:"default_endpoint_settings"`
	Settings                    apiSettings                `json:"settings"`
	PgVersion                   int                        `json:"pg_version"`
	ProxyHost                   string                     `json:"proxy_host"`
	BranchLogicalSizeLimit      int64                      `json:"branch_logical_size_limit"`
	BranchLogicalSizeLimitBytes int64                      `json:"branch_logical_size_limit_bytes"`
	StorePasswords              bool                       `json:"store_passwords"`
	CPUUsedSec                  int64                      `json:"cpu_used_sec"`
	CreationSource              string                     `json:"creation_source"`
	CreatedAt                   string                     `json:"created_at"`
	UpdatedAt                   string                     `json:"updated_at"`
	SyntheticStorageSize        int64                      `json:"synthetic_storage_size"`
	OwnerID                     string                     `json:"owner_id"`
	ComputeLastActiveAt         string                     `json:"compute_last_active_at,omitempty"`
	OrgID                       string                     `json:"org_id"`
	HistoryRetentionSeconds     int32                      `json:"history_retention_seconds"`
}

type apiListItem struct {
	apiProjectCommon
	ActiveTime int64  `json:"active_time"`
	OrgName    string `json:"org_name"`
}

type apiOwner struct {
	Email            string `json:"email"`
	Name             string `json:"name"`
	BranchesLimit    int    `json:"branches_limit"`
	SubscriptionType string `json:"subscription_type"`
}

type apiProject struct {
	apiProjectCommon
	DataStorageBytesHour   int64    `json:"data_storage_bytes_hour"`
	DataTransferBytes      int64    `json:"data_transfer_bytes"`
	WrittenDataBytes       int64    `json:"written_data_bytes"`
	ComputeTimeSeconds     int64    `json:"compute_time_seconds"`
	ActiveTimeSeconds      int64    `json:"active_time_seconds"`
	ConsumptionPeriodStart string   `json:"consumption_period_start"`
	ConsumptionPeriodEnd   string   `json:"consumption_period_end"`
	Owner                  apiOwner `json:"owner"`
}

type apiEndpointSettings struct {
	PgSettings map[string]string `json:"pg_settings"`
}

type apiEndpoint struct {
	Host                  string              `json:"host"`
	ID                    string              `json:"id"`
	ProjectID             string              `json:"project_id"`
	BranchID              string              `json:"branch_id"`
	AutoscalingLimitMinCU float64             `json:"autoscaling_limit_min_cu"`
	AutoscalingLimitMaxCU float64             `json:"autoscaling_limit_max_cu"`
	RegionID              string              `json:"region_id"`
	Type                  string              `json:"type"`
	CurrentState          string              `json:"current_state"`
	Settings              apiEndpointSettings `json:"settings"`
	PoolerEnabled         bool                `json:"pooler_enabled"`
	PoolerMode            string              `json:"pooler_mode"`
	Disabled              bool                `json:"disabled"`
	PasswordlessAccess    bool                `json:"passwordless_access"`
	LastActive            string              `json:"last_active,omitempty"`
	CreationSource        string              `json:"creation_source"`
	CreatedAt             string              `json:"created_at"`
	UpdatedAt             string              `json:"updated_at"`
	ProxyHost             string              `json:"proxy_host"`
	SuspendTimeoutSeconds int64               `json:"suspend_timeout_seconds"`
	Provisioner           string              `json:"provisioner"`
	Name                  string              `json:"name,omitempty"`
}

type apiOperation struct {
	ID              string `json:"id"`
	ProjectID       string `json:"project_id"`
	BranchID        string `json:"branch_id,omitempty"`
	EndpointID      string `json:"endpoint_id,omitempty"`
	Action          string `json:"action"`
	Status          string `json:"status"`
	FailuresCount   int32  `json:"failures_count"`
	CreatedAt       string `json:"created_at"`
	UpdatedAt       string `json:"updated_at"`
	TotalDurationMs int32  `json:"total_duration_ms"`
}

const (
	simRegion    = "aws-us-east-2"
	simProxyHost = "us-east-2.aws.neon.tech"
)

func ts(sec int64) string { return string(appendTime(nil, sec)) }

// projectSnap is what a project's JSON needs, taken under the lock.
type projectSnap struct {
	p        *project
	st       *pstate // nil when untouched
	v        view
	held     bool
	eps      []epState
	defaults EndpointSettings
	quota    Quota
	name     string
	retent   int32
	updated  int64
	ver      int // the state's version, 0 without state
}

func (s *Sim) snapLocked(p *project, now int64) projectSnap {
	pr := s.periodAt(p, now)
	sn := projectSnap{p: p, st: s.states[p.idx], defaults: s.baseDefaults(p), name: p.id, retent: 86400, updated: p.created}
	sn.v = s.viewLocked(p, min(max(ceilDiv(pr.start, 3600), s.histHour), floorDiv(now, 3600)-168), floorDiv(now, 3600)+1)
	sn.held = s.quotaSuspendedLocked(p, sn.st, now)
	sn.eps = append([]epState(nil), s.endpointsLocked(p)...)
	if st := sn.st; st != nil {
		sn.defaults, sn.quota, sn.name, sn.retent, sn.updated = st.defaults, st.quota, st.name, st.retention, st.updated
		sn.ver = st.ver
	}
	return sn
}

func (s *Sim) common(sn *projectSnap, c *Counters, now int64) apiProjectCommon {
	p := sn.p
	out := apiProjectCommon{
		ID: p.id, PlatformID: "aws", RegionID: simRegion, Name: sn.name, Provisioner: "k8s-neonvm",
		DefaultEndpointSettings: apiDefaultEndpointSettings{
			AutoscalingLimitMinCU: sn.defaults.MinCU, AutoscalingLimitMaxCU: sn.defaults.MaxCU,
			SuspendTimeoutSeconds: sn.defaults.SuspendTimeoutSeconds,
		},
		PgVersion: 17, ProxyHost: simProxyHost,
		BranchLogicalSizeLimit: 0, BranchLogicalSizeLimitBytes: -1,
		StorePasswords: true, CPUUsedSec: c.ComputeTimeSeconds, CreationSource: "console",
		CreatedAt: ts(p.created), UpdatedAt: ts(sn.updated),
		OwnerID: "owner-" + s.orgs[p.org].id, OrgID: s.orgs[p.org].id,
		HistoryRetentionSeconds: sn.retent,
	}
	if q := sn.quota; q != (Quota{}) {
		out.Settings.Quota = &apiQuota{q.ActiveTimeSeconds, q.ComputeTimeSeconds, q.WrittenDataBytes, q.DataTransferBytes, q.LogicalSizeBytes}
	}
	if t := s.lastActive(p, &sn.v, sn.eps, sn.held, now); t != 0 {
		out.ComputeLastActiveAt = ts(t)
	}
	var vals [numMetrics]int64
	h := floorDiv(now, 3600)
	cuCap, off := sn.v.at(h)
	s.baseHour(p, h, cuCap, off, &vals)
	out.SyntheticStorageSize = vals[mSyntheticStorageSizeBytes]
	return out
}

func (s *Sim) apiProject(sn *projectSnap, now int64) apiProject {
	p := sn.p
	pr := s.periodAt(p, now)
	c := s.counters(p, &sn.v, pr, now)
	o := &s.orgs[p.org]
	return apiProject{
		apiProjectCommon:     s.common(sn, &c, now),
		DataStorageBytesHour: c.DataStorageBytesHour, DataTransferBytes: c.DataTransferBytes,
		WrittenDataBytes: c.WrittenDataBytes, ComputeTimeSeconds: c.ComputeTimeSeconds,
		ActiveTimeSeconds:      c.ActiveTimeSeconds,
		ConsumptionPeriodStart: ts(pr.start), ConsumptionPeriodEnd: ts(pr.end),
		Owner: apiOwner{Email: "owner@" + o.id + ".example.com", Name: o.name + " Owner", BranchesLimit: branchesLimit(p.org), SubscriptionType: o.subscription},
	}
}

func branchesLimit(org uint8) int {
	switch org {
	case orgFree:
		return 10
	case orgLegacy:
		return 500
	}
	return 5000
}

func (s *Sim) apiEndpoint(sn *projectSnap, e int, now int64) apiEndpoint {
	p, ep := sn.p, &sn.eps[e]
	id := s.endpointID(p, e)
	branch, typ := s.endpointBranch(p, e)
	state := "idle"
	if s.endpointActive(p, e, ep, now, sn.held) {
		state = "active"
	}
	out := apiEndpoint{
		Host: id + "." + simProxyHost, ID: id, ProjectID: p.id, BranchID: branch,
		AutoscalingLimitMinCU: ep.MinCU, AutoscalingLimitMaxCU: ep.MaxCU,
		RegionID: simRegion, Type: typ, CurrentState: state,
		Settings:   apiEndpointSettings{PgSettings: map[string]string{}},
		PoolerMode: "transaction", Disabled: ep.disabled, PasswordlessAccess: true,
		CreationSource: "console", CreatedAt: ts(p.created), UpdatedAt: ts(max(ep.updated, p.created)),
		ProxyHost: simProxyHost, SuspendTimeoutSeconds: ep.SuspendTimeoutSeconds, Provisioner: "k8s-neonvm", Name: ep.name,
	}
	if e == 0 {
		if t := s.lastActive(p, &sn.v, sn.eps, sn.held, now); t != 0 {
			out.LastActive = ts(t)
		}
	}
	return out
}

func (s *Sim) apiOperation(p *project, o *opRecord, nowNano int64, creating bool) apiOperation {
	status := s.opStatus(o, nowNano)
	if creating {
		status = o.first
	}
	out := apiOperation{
		ID: o.id, ProjectID: p.id, Action: o.action, Status: status,
		CreatedAt: ts(floorDiv(o.created, 1e9)), UpdatedAt: ts(floorDiv(o.created, 1e9)),
	}
	if status == "finished" {
		done := o.created + int64(s.cfg.OperationDelay)
		out.UpdatedAt = ts(floorDiv(done, 1e9))
		out.TotalDurationMs = int32(min(int64(s.cfg.OperationDelay)/1e6, 1<<31-1))
	} else {
		out.TotalDurationMs = int32(min(max(nowNano-o.created, 0)/1e6, 1<<31-1))
	}
	if o.endpoint >= 0 {
		out.EndpointID = s.endpointID(p, o.endpoint)
		out.BranchID, _ = s.endpointBranch(p, o.endpoint)
	}
	return out
}

// project resolves {project_id}, answering 404 when unknown.
func (s *Sim) project(rc *reqCtx) (*project, bool) {
	id := rc.r.PathValue("project_id")
	idx, ok := s.byID[id]
	if ok {
		s.mu.Lock()
		ok = !s.deleted[idx]
		s.mu.Unlock()
	}
	if !ok {
		rc.notFound("project not found: " + id)
		return nil, false
	}
	return &s.projects[idx], true
}

// endpoint resolves {project_id} and {endpoint_id} within it, answering 404 for either.
func (s *Sim) endpoint(rc *reqCtx) (*project, int, bool) {
	p, ok := s.project(rc)
	if !ok {
		return nil, 0, false
	}
	id := rc.r.PathValue("endpoint_id")
	for e := 0; e < int(p.endpoints); e++ {
		if s.endpointID(p, e) == id {
			return p, e, true
		}
	}
	rc.notFound("endpoint not found: " + id)
	return nil, 0, false
}

// listParams checks limit, timeout and org_id of GET /projects; org is -1 for every org.
func (s *Sim) listParams(rc *reqCtx, q url.Values) (limit, org int, ok bool) {
	limit, org = 10, -1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 400 {
			rc.badRequest("limit: must be an integer from 1 to 400")
			return limit, org, false
		}
		limit = n
	}
	if v := q.Get("timeout"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 100 || n > 30000 {
			rc.badRequest("timeout: must be an integer from 100 to 30000 (milliseconds)")
			return limit, org, false
		}
	}
	if id := q.Get("org_id"); id != "" {
		for i := range s.orgs {
			if s.orgs[i].id == id {
				org = i
			}
		}
		if org < 0 {
			rc.notFound("organization not found: " + id)
			return limit, org, false
		}
	}
	return limit, org, true
}

func (s *Sim) handleListProjects(rc *reqCtx) {
	q := rc.r.URL.Query()
	limit, org, ok := s.listParams(rc, q)
	if !ok {
		return
	}
	search := q.Get("search")
	now := rc.sec()

	// Newest-created first: global index order descending, or the org's own list.
	n := len(s.projects)
	at := func(i int) int32 { return int32(n - 1 - i) }
	count := n
	if org >= 0 {
		at = func(i int) int32 { return s.orgs[org].projects[i] }
		count = len(s.orgs[org].projects)
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		idx, ok := s.byID[c]
		if !ok || (org >= 0 && int(s.projects[idx].org) != org) {
			rc.badRequest("cursor: not a cursor of this listing: " + c)
			return
		}
		start = n - int(idx)
		if org >= 0 {
			start = int(s.projects[idx].orgPos) + 1
		}
	}

	s.mu.Lock()
	var snaps []projectSnap
	for i := start; i < count && len(snaps) < limit; i++ {
		p := &s.projects[at(i)]
		if s.deleted[p.idx] {
			continue
		}
		if search != "" {
			name := p.id
			if st := s.states[p.idx]; st != nil {
				name = st.name
			}
			if !strings.Contains(p.id, search) && !strings.Contains(name, search) {
				continue
			}
		}
		snaps = append(snaps, s.snapLocked(p, now))
	}
	s.mu.Unlock()

	resp := struct {
		Projects              []apiListItem       `json:"projects"`
		UnavailableProjectIDs []string            `json:"unavailable_project_ids"`
		Pagination            *apiPagination      `json:"pagination,omitempty"`
		Applications          map[string][]string `json:"applications"`
		Integrations          map[string][]string `json:"integrations"`
	}{Projects: []apiListItem{}, UnavailableProjectIDs: []string{}, Applications: map[string][]string{}, Integrations: map[string][]string{}}
	for i := range snaps {
		sn := &snaps[i]
		pr := s.periodAt(sn.p, now)
		c := s.computeCounters(sn.p, &sn.v, pr, now, sn.ver)
		resp.Projects = append(resp.Projects, apiListItem{apiProjectCommon: s.common(sn, &c, now), ActiveTime: c.ActiveTimeSeconds, OrgName: s.orgs[sn.p.org].name})
	}
	if len(snaps) == limit {
		resp.Pagination = &apiPagination{Cursor: snaps[len(snaps)-1].p.id}
	}
	if rc.fault == faultUnavailable && len(resp.Projects) > 0 {
		k := max(1, len(resp.Projects)/4)
		for _, it := range resp.Projects[len(resp.Projects)-k:] {
			resp.UnavailableProjectIDs = append(resp.UnavailableProjectIDs, it.ID)
		}
		resp.Projects = resp.Projects[:len(resp.Projects)-k]
		rc.applied = true
	}
	rc.json(resp)
}

type apiPagination struct {
	Cursor string `json:"cursor"`
}

// projectSnapOf snapshots the request's project at the request's time; a missing project is
// answered 404.
func (s *Sim) projectSnapOf(rc *reqCtx) (projectSnap, bool) {
	p, ok := s.project(rc)
	if !ok {
		return projectSnap{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapLocked(p, rc.sec()), true
}

func (s *Sim) handleGetProject(rc *reqCtx) {
	sn, ok := s.projectSnapOf(rc)
	if !ok {
		return
	}
	rc.json(struct {
		Project apiProject `json:"project"`
	}{s.apiProject(&sn, rc.sec())})
}

// decodeBody decodes a JSON request body, answering 400 when it does not fit.
func decodeBody(rc *reqCtx, v any) bool {
	body, err := io.ReadAll(io.LimitReader(rc.r.Body, 1<<20))
	if err != nil {
		rc.badRequest("read body: " + err.Error())
		return false
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		rc.badRequest("body: " + err.Error())
		return false
	}
	return true
}

// present refuses a body without its object (what: "project", "endpoint").
func present[T any](rc *reqCtx, v *T, what string) bool {
	if v == nil {
		rc.badRequest("body: missing " + what)
		return false
	}
	return true
}

// nameOK refuses a new name outside 1 to max characters; nil (name unchanged) passes.
func nameOK(rc *reqCtx, name *string, max int) bool {
	if name != nil && (len(*name) < 1 || len(*name) > max) {
		rc.badRequest(fmt.Sprintf("name: must be 1 to %d characters", max))
		return false
	}
	return true
}

type cuLimits struct {
	MinCU          *float64 `json:"autoscaling_limit_min_cu"`
	MaxCU          *float64 `json:"autoscaling_limit_max_cu"`
	SuspendTimeout *int64   `json:"suspend_timeout_seconds"`
}

// apply merges the set fields into cur and validates the result.
func (l *cuLimits) apply(cur EndpointSettings) (EndpointSettings, error) {
	if l.MinCU != nil {
		cur.MinCU = *l.MinCU
	}
	if l.MaxCU != nil {
		cur.MaxCU = *l.MaxCU
	}
	if l.SuspendTimeout != nil {
		cur.SuspendTimeoutSeconds = *l.SuspendTimeout
	}
	switch {
	case cur.MinCU < 0.25 || cur.MaxCU < 0.25 || cur.MinCU > 56 || cur.MaxCU > 56:
		return cur, fmt.Errorf("compute units must be from 0.25 to 56")
	case cur.MinCU > cur.MaxCU:
		return cur, fmt.Errorf("autoscaling_limit_min_cu (%g) exceeds autoscaling_limit_max_cu (%g)", cur.MinCU, cur.MaxCU)
	case cur.SuspendTimeoutSeconds < -1 || cur.SuspendTimeoutSeconds > 604800:
		return cur, fmt.Errorf("suspend_timeout_seconds must be from -1 to 604800")
	}
	return cur, nil
}

func (s *Sim) locked(rc *reqCtx) {
	rc.fail(http.StatusLocked, "LOCKED", "project already has running operations, try again later")
}

// lockIdle takes s.mu and returns p's state, unless p has a running operation: then it answers
// 423 Locked, as Neon does, releases s.mu and returns false.
func (s *Sim) lockIdle(rc *reqCtx, p *project, nowNano int64) (*pstate, bool) {
	s.mu.Lock()
	if s.busyLocked(s.states[p.idx], nowNano) {
		s.mu.Unlock()
		s.locked(rc)
		return nil, false
	}
	return s.stateLocked(p), true
}

// handleUpdateProject applies settings.quota (each given field replaces the stored one; 0
// clears it), default_endpoint_settings (new computes only), name and history retention.
// projectPatch is the body of PATCH /projects/{project_id} the simulator models.
type projectPatch struct {
	Project *struct {
		Name                    *string `json:"name"`
		HistoryRetentionSeconds *int64  `json:"history_retention_seconds"`
		Settings                *struct {
			Quota *quotaPatch `json:"quota"`
		} `json:"settings"`
		DefaultEndpointSettings *cuLimits `json:"default_endpoint_settings"`
	} `json:"project"`
}

// quotaPatch is settings.quota: each given field replaces the stored one (0 clears it).
type quotaPatch struct {
	ActiveTimeSeconds  *int64 `json:"active_time_seconds"`
	ComputeTimeSeconds *int64 `json:"compute_time_seconds"`
	WrittenDataBytes   *int64 `json:"written_data_bytes"`
	DataTransferBytes  *int64 `json:"data_transfer_bytes"`
	LogicalSizeBytes   *int64 `json:"logical_size_bytes"`
}

// apply returns cur with the given fields replaced; no field may be negative.
func (q *quotaPatch) apply(cur Quota) (Quota, bool) {
	for _, f := range []struct {
		v   *int64
		dst *int64
	}{
		{q.ActiveTimeSeconds, &cur.ActiveTimeSeconds}, {q.ComputeTimeSeconds, &cur.ComputeTimeSeconds},
		{q.WrittenDataBytes, &cur.WrittenDataBytes}, {q.DataTransferBytes, &cur.DataTransferBytes},
		{q.LogicalSizeBytes, &cur.LogicalSizeBytes},
	} {
		if f.v != nil {
			if *f.v < 0 {
				return cur, false
			}
			*f.dst = *f.v
		}
	}
	return cur, true
}

func (s *Sim) handleUpdateProject(rc *reqCtx) {
	p, ok := s.project(rc)
	if !ok {
		return
	}
	var body projectPatch
	if !decodeBody(rc, &body) || !present(rc, body.Project, "project") || !nameOK(rc, body.Project.Name, 256) {
		return
	}
	u := body.Project
	if r := u.HistoryRetentionSeconds; r != nil && (*r < 0 || *r > 2592000) {
		rc.badRequest("history_retention_seconds: must be from 0 to 2592000")
		return
	}
	now, nowNano := rc.sec(), rc.now.UnixNano()
	st, ok := s.lockIdle(rc, p, nowNano)
	if !ok {
		return
	}
	newQ := st.quota
	if u.Settings != nil && u.Settings.Quota != nil {
		if newQ, ok = u.Settings.Quota.apply(st.quota); !ok {
			s.mu.Unlock()
			rc.badRequest("settings.quota: values must be ≥ 0")
			return
		}
	}
	defaults := st.defaults
	if u.DefaultEndpointSettings != nil {
		d, err := u.DefaultEndpointSettings.apply(st.defaults)
		if err != nil {
			s.mu.Unlock()
			rc.badRequest("default_endpoint_settings: " + err.Error())
			return
		}
		defaults = d
	}
	heldBefore := s.quotaSuspendedLocked(p, st, now)
	activeBefore := make([]bool, len(st.eps))
	for e := range st.eps {
		activeBefore[e] = s.endpointActive(p, e, &st.eps[e], now, heldBefore)
	}
	if newQ != st.quota {
		st.quota = newQ
		st.quotaEvents = append(st.quotaEvents, quotaEvent{at: now, q: newQ})
		st.ver++
	}
	st.defaults = defaults
	if u.Name != nil {
		st.name = *u.Name
	}
	if u.HistoryRetentionSeconds != nil {
		st.retention = int32(*u.HistoryRetentionSeconds)
	}
	st.updated = now
	var ops []opRecord
	if !heldBefore && s.quotaSuspendedLocked(p, st, now) {
		for e, was := range activeBefore {
			if was {
				ops = append(ops, s.addOpLocked(p, st, "suspend_compute", e, nowNano, "running"))
			}
		}
	}
	sn := s.snapLocked(p, now)
	apiOps := make([]apiOperation, 0, len(ops))
	for i := range ops {
		apiOps = append(apiOps, s.apiOperation(p, &ops[i], nowNano, true))
	}
	s.mu.Unlock()
	rc.json(struct {
		Project    apiProject     `json:"project"`
		Operations []apiOperation `json:"operations"`
	}{s.apiProject(&sn, now), apiOps})
}

func (s *Sim) handleListEndpoints(rc *reqCtx) {
	sn, ok := s.projectSnapOf(rc)
	if !ok {
		return
	}
	eps := make([]apiEndpoint, 0, len(sn.eps))
	for e := range sn.eps {
		eps = append(eps, s.apiEndpoint(&sn, e, rc.sec()))
	}
	rc.json(struct {
		Endpoints []apiEndpoint `json:"endpoints"`
	}{eps})
}

type endpointOperations struct {
	Endpoint   apiEndpoint    `json:"endpoint"`
	Operations []apiOperation `json:"operations"`
}

func (s *Sim) endpointResponseLocked(p *project, e int, ops []opRecord, now, nowNano int64) endpointOperations {
	sn := s.snapLocked(p, now)
	out := endpointOperations{Endpoint: s.apiEndpoint(&sn, e, now), Operations: make([]apiOperation, 0, len(ops))}
	for i := range ops {
		out.Operations = append(out.Operations, s.apiOperation(p, &ops[i], nowNano, true))
	}
	return out
}

// handleSuspendEndpoint suspends a compute; the next connection or load wakes it again.
func (s *Sim) handleSuspendEndpoint(rc *reqCtx) {
	p, e, ok := s.endpoint(rc)
	if !ok {
		return
	}
	now, nowNano := rc.sec(), rc.now.UnixNano()
	st, ok := s.lockIdle(rc, p, nowNano)
	if !ok {
		return
	}
	ep := &st.eps[e]
	ep.suspendedAt, ep.wakeUntil, ep.updated = now, 0, now
	op := s.addOpLocked(p, st, "suspend_compute", e, nowNano, "running")
	resp := s.endpointResponseLocked(p, e, []opRecord{op}, now, nowNano)
	s.mu.Unlock()
	rc.json(resp)
}

// handleUpdateEndpoint changes limits, suspend timeout, disabled and name. Like real Neon it
// briefly starts an idle compute to apply the change, which Stats.Wakes counts (unless the
// compute is disabled or quota-held and so cannot start).
func (s *Sim) handleUpdateEndpoint(rc *reqCtx) {
	p, e, ok := s.endpoint(rc)
	if !ok {
		return
	}
	var body struct {
		Endpoint *struct {
			cuLimits
			Disabled *bool   `json:"disabled"`
			Name     *string `json:"name"`
		} `json:"endpoint"`
	}
	if !decodeBody(rc, &body) || !present(rc, body.Endpoint, "endpoint") || !nameOK(rc, body.Endpoint.Name, 64) {
		return
	}
	u := body.Endpoint
	now, nowNano := rc.sec(), rc.now.UnixNano()
	st, ok := s.lockIdle(rc, p, nowNano)
	if !ok {
		return
	}
	ep := &st.eps[e]
	settings, err := u.apply(ep.EndpointSettings)
	if err != nil {
		s.mu.Unlock()
		rc.badRequest(err.Error())
		return
	}
	held := s.quotaSuspendedLocked(p, st, now)
	wasActive := s.endpointActive(p, e, ep, now, held)
	wake := !wasActive && !held && !ep.disabled
	maxBefore := ep.MaxCU
	ep.EndpointSettings = settings
	if u.Name != nil {
		ep.name = *u.Name
	}
	if u.Disabled != nil && *u.Disabled != ep.disabled {
		ep.disabled = *u.Disabled
		all := true
		for i := range st.eps {
			all = all && st.eps[i].disabled
		}
		last, _ := lastAtSec(st.off, now)
		if all != last.on {
			st.off = append(st.off, change{sec: now, hour: ceilDiv(now, 3600), on: all})
			st.ver++
		}
	}
	if e == 0 && settings.MaxCU != maxBefore {
		st.caps = append(st.caps, change{sec: now, hour: ceilDiv(now, 3600), val: settings.MaxCU})
		st.ver++
	}
	ep.updated = now
	ops := []opRecord{s.addOpLocked(p, st, "apply_config", e, nowNano, "running")}
	if wake {
		s.stats.Wakes++
		ep.wakeUntil, ep.wokeAt = now+max(1, ceilDiv(int64(s.cfg.OperationDelay), 1e9)), now
		ops = append(ops, s.addOpLocked(p, st, "suspend_compute", e, nowNano, "scheduling"))
	} else if wasActive && ep.disabled {
		ops = append(ops, s.addOpLocked(p, st, "suspend_compute", e, nowNano, "scheduling"))
	}
	resp := s.endpointResponseLocked(p, e, ops, now, nowNano)
	s.mu.Unlock()
	rc.json(resp)
}

func (s *Sim) handleGetOperation(rc *reqCtx) {
	p, ok := s.project(rc)
	if !ok {
		return
	}
	id := rc.r.PathValue("operation_id")
	s.mu.Lock()
	var found *apiOperation
	if st := s.states[p.idx]; st != nil {
		for i := range st.ops {
			if st.ops[i].id == id {
				op := s.apiOperation(p, &st.ops[i], rc.now.UnixNano(), false)
				found = &op
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		rc.notFound("operation not found: " + id)
		return
	}
	rc.json(struct {
		Operation apiOperation `json:"operation"`
	}{*found})
}
