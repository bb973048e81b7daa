package enforcement

import (
	"context"
	"fmt"

	"github.com/neonmeter/neonmeter/neon"
)

// Neon is the part of the Neon client enforcement uses. The client retries 423 (a project with
// running operations) and 503 itself, and never retries a mutation after a network error.
type Neon interface {
	GetProject(ctx context.Context, projectID string) (*neon.Project, error)
	ListEndpoints(ctx context.Context, projectID string) ([]neon.Endpoint, error)
	UpdateProject(ctx context.Context, projectID string, u neon.ProjectUpdate) (*neon.Project, []neon.Operation, error)
	SuspendEndpoint(ctx context.Context, projectID, endpointID string) (*neon.Endpoint, []neon.Operation, error)
	UpdateEndpoint(ctx context.Context, projectID, endpointID string, u neon.EndpointUpdate) (*neon.Endpoint, []neon.Operation, error)
	WaitOperations(ctx context.Context, projectID string, ops []neon.Operation) error
}

var _ Neon = (*neon.Client)(nil)

// observe reads a project's actual state: settings and computes. Both are GETs; neither wakes
// a compute.
func observe(ctx context.Context, n Neon, projectID string) (Observed, error) {
	p, err := n.GetProject(ctx, projectID)
	if err != nil {
		return Observed{}, fmt.Errorf("observe: %w", err)
	}
	eps, err := n.ListEndpoints(ctx, projectID)
	if err != nil {
		return Observed{}, fmt.Errorf("observe: %w", err)
	}
	return Observed{Known: true, Quota: p.Settings.Quota, Defaults: p.DefaultEndpointSettings, Endpoints: eps}, nil
}

// applyAction sends one action and waits for the operations Neon started, so the next mutation
// of the project does not meet 423. It returns the operation ids.
func applyAction(ctx context.Context, n Neon, a Action) ([]string, error) {
	var (
		ops []neon.Operation
		err error
	)
	switch a.Kind {
	case ActionUpdateProject:
		_, ops, err = n.UpdateProject(ctx, a.ProjectID, neon.ProjectUpdate{Quota: a.Quota, DefaultEndpointSettings: a.Defaults})
	case ActionSuspendEndpoint:
		_, ops, err = n.SuspendEndpoint(ctx, a.ProjectID, a.EndpointID)
	case ActionUpdateEndpoint:
		_, ops, err = n.UpdateEndpoint(ctx, a.ProjectID, a.EndpointID, neon.EndpointUpdate{AutoscalingLimitMinCU: a.MinCU, AutoscalingLimitMaxCU: a.MaxCU})
	default:
		return nil, fmt.Errorf("apply %s project %s: unknown action kind", a.Kind, a.ProjectID)
	}
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.ID
	}
	if err != nil {
		return ids, fmt.Errorf("apply %s project %s: %w", a.Kind, a.ProjectID, err)
	}
	if err := n.WaitOperations(ctx, a.ProjectID, ops); err != nil {
		return ids, fmt.Errorf("apply %s project %s: %w", a.Kind, a.ProjectID, err)
	}
	return ids, nil
}
