package neon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Endpoint states (current_state, pending_state).
const (
	EndpointStateInit   = "init"
	EndpointStateActive = "active"
	EndpointStateIdle   = "idle"
)

// Endpoint is a compute of a project.
type Endpoint struct {
	ID, ProjectID, BranchID string
	Host                    string
	Type                    string // "read_write" or "read_only"
	CurrentState            string // EndpointState*
	PendingState            string // "" when no change is pending
	Disabled                bool
	AutoscalingLimitMinCU   float64
	AutoscalingLimitMaxCU   float64
	SuspendTimeoutSeconds   int64
	LastActive              time.Time
	CreatedAt, UpdatedAt    time.Time
}

// EndpointUpdate is a PATCH of an endpoint; nil and zero fields are not sent.
type EndpointUpdate struct {
	Disabled              *bool
	AutoscalingLimitMinCU float64 // ≥ 0.25; 0 = unchanged
	AutoscalingLimitMaxCU float64 // ≥ 0.25; 0 = unchanged
	SuspendTimeoutSeconds *int64  // -1 never, 0 Neon's default, else 60–604800
}

type wireEndpoint struct {
	ID                    string    `json:"id"`
	ProjectID             string    `json:"project_id"`
	BranchID              string    `json:"branch_id"`
	Host                  string    `json:"host"`
	Type                  string    `json:"type"`
	CurrentState          string    `json:"current_state"`
	PendingState          string    `json:"pending_state"`
	Disabled              bool      `json:"disabled"`
	AutoscalingLimitMinCU float64   `json:"autoscaling_limit_min_cu"`
	AutoscalingLimitMaxCU float64   `json:"autoscaling_limit_max_cu"`
	SuspendTimeoutSeconds int64     `json:"suspend_timeout_seconds"`
	LastActive            time.Time `json:"last_active"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

func (w *wireEndpoint) endpoint() (Endpoint, error) {
	if !ValidID(w.ID) {
		return Endpoint{}, &DecodeError{Project: w.ProjectID, Reason: fmt.Sprintf("endpoint id %q missing or not matching ^[a-z0-9-]{1,60}$", clip([]byte(w.ID)))}
	}
	if bad := badCompute(w.AutoscalingLimitMinCU, w.AutoscalingLimitMaxCU, w.SuspendTimeoutSeconds); bad != "" {
		return Endpoint{}, &DecodeError{Project: w.ProjectID, Reason: "endpoint " + w.ID + ": " + bad}
	}
	return Endpoint(*w), nil
}

// ListEndpoints lists every compute of a project (the route is not paginated).
func (c *Client) ListEndpoints(ctx context.Context, projectID string) ([]Endpoint, error) {
	if !ValidID(projectID) {
		return nil, fmt.Errorf("list endpoints: project id %q does not match ^[a-z0-9-]{1,60}$", projectID)
	}
	rq := &request{method: http.MethodGet, route: routeEndpoints, path: "/projects/" + projectID + "/endpoints", bucket: c.general, projectID: projectID}
	var eps []Endpoint
	err := c.do(ctx, rq, func(body []byte) error {
		var w struct {
			Endpoints *[]wireEndpoint `json:"endpoints"`
		}
		if err := decodeJSON(body, "endpoints", &w); err != nil {
			return err
		}
		if w.Endpoints == nil {
			return &DecodeError{Project: projectID, Reason: `"endpoints" missing`}
		}
		eps = make([]Endpoint, 0, len(*w.Endpoints))
		for i := range *w.Endpoints {
			ep, err := (*w.Endpoints)[i].endpoint()
			if err != nil {
				return err
			}
			eps = append(eps, ep)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list endpoints %s: %w", projectID, err)
	}
	return eps, nil
}

// SuspendEndpoint suspends a compute now. It does not stop the next connection from starting it
// again: for a lasting stop use the project quota or UpdateEndpoint with Disabled.
func (c *Client) SuspendEndpoint(ctx context.Context, projectID, endpointID string) (*Endpoint, []Operation, error) {
	if !ValidID(projectID) || !ValidID(endpointID) {
		return nil, nil, fmt.Errorf("suspend endpoint: project id %q or endpoint id %q does not match ^[a-z0-9-]{1,60}$", projectID, endpointID)
	}
	rq := &request{
		method: http.MethodPost, route: routeEndpointSuspend,
		path: "/projects/" + projectID + "/endpoints/" + endpointID + "/suspend", bucket: c.general, projectID: projectID,
	}
	ep, ops, err := c.endpointMutation(ctx, rq)
	if err != nil {
		return nil, nil, fmt.Errorf("suspend endpoint %s/%s: %w", projectID, endpointID, err)
	}
	return ep, ops, nil
}

// UpdateEndpoint patches a compute (disabled, CU limits, suspend timeout).
//
// WAKE RISK: real Neon starts an idle compute to apply a configuration change, which costs
// compute time. Every attempt is counted in neonmeter_neon_wake_risk_requests_total and
// Stats().WakeRisk; read the endpoint first and call this only when something must change.
func (c *Client) UpdateEndpoint(ctx context.Context, projectID, endpointID string, u EndpointUpdate) (*Endpoint, []Operation, error) {
	if !ValidID(projectID) || !ValidID(endpointID) {
		return nil, nil, fmt.Errorf("update endpoint: project id %q or endpoint id %q does not match ^[a-z0-9-]{1,60}$", projectID, endpointID)
	}
	var suspend int64
	if u.SuspendTimeoutSeconds != nil {
		suspend = *u.SuspendTimeoutSeconds
	}
	if err := checkComputeSettings(u.AutoscalingLimitMinCU, u.AutoscalingLimitMaxCU, suspend); err != nil {
		return nil, nil, fmt.Errorf("update endpoint %s/%s: %w", projectID, endpointID, err)
	}
	if u == (EndpointUpdate{}) {
		return nil, nil, fmt.Errorf("update endpoint %s/%s: nothing to update", projectID, endpointID)
	}
	var body struct {
		Endpoint struct {
			Disabled              *bool   `json:"disabled,omitempty"`
			AutoscalingLimitMinCU float64 `json:"autoscaling_limit_min_cu,omitempty"`
			AutoscalingLimitMaxCU float64 `json:"autoscaling_limit_max_cu,omitempty"`
			SuspendTimeoutSeconds *int64  `json:"suspend_timeout_seconds,omitempty"`
		} `json:"endpoint"`
	}
	body.Endpoint.Disabled = u.Disabled
	body.Endpoint.AutoscalingLimitMinCU = u.AutoscalingLimitMinCU
	body.Endpoint.AutoscalingLimitMaxCU = u.AutoscalingLimitMaxCU
	body.Endpoint.SuspendTimeoutSeconds = u.SuspendTimeoutSeconds
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("update endpoint %s/%s: encode: %w", projectID, endpointID, err)
	}
	rq := &request{
		method: http.MethodPatch, route: routeEndpoint,
		path: "/projects/" + projectID + "/endpoints/" + endpointID, body: raw,
		bucket: c.general, wakeRisk: true, projectID: projectID,
	}
	ep, ops, err := c.endpointMutation(ctx, rq)
	if err != nil {
		return nil, nil, fmt.Errorf("update endpoint %s/%s: %w", projectID, endpointID, err)
	}
	return ep, ops, nil
}

func (c *Client) endpointMutation(ctx context.Context, rq *request) (*Endpoint, []Operation, error) {
	var (
		ep  Endpoint
		ops []Operation
	)
	err := c.do(ctx, rq, func(body []byte) error {
		var w struct {
			Endpoint   *wireEndpoint   `json:"endpoint"`
			Operations []wireOperation `json:"operations"`
		}
		if err := decodeJSON(body, "endpoint", &w); err != nil {
			return err
		}
		if w.Endpoint == nil {
			return &DecodeError{Reason: `"endpoint" missing`}
		}
		var err error
		if ep, err = w.Endpoint.endpoint(); err != nil {
			return err
		}
		ops, err = operations(w.Operations)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &ep, ops, nil
}
