package main

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/neon"
)

// neonRouter is enforcement's Neon when orgs are held by several Neon accounts: each call goes
// to the client whose key may act on the project. A list names its org; a project's org is
// learned from the lists every cycle reads before it acts, and a project no list showed (a
// deleted one, whose 404 makes it gone) is asked of each account until one knows it: a key that
// does not hold the project gets 404 and changes nothing.
type neonRouter struct {
	byOrg   map[string]*neon.Client
	clients []*neon.Client // each account's once, in configuration order

	mu    sync.Mutex
	orgOf map[string]string // project id → org id
}

var _ enforcement.Neon = (*neonRouter)(nil)

func newNeonRouter(accts []accountClient) *neonRouter {
	r := &neonRouter{byOrg: map[string]*neon.Client{}, orgOf: map[string]string{}}
	for _, a := range accts {
		r.clients = append(r.clients, a.client)
		for _, o := range a.Orgs {
			r.byOrg[o.ID] = a.client
		}
	}
	return r
}

func (r *neonRouter) ListProjects(ctx context.Context, q neon.ListProjectsQuery) iter.Seq2[*neon.ProjectsPage, error] {
	c, ok := r.byOrg[q.OrgID]
	if !ok {
		c = r.clients[0] // an org usage still names but no longer configured: as with one account
	}
	return func(yield func(*neon.ProjectsPage, error) bool) {
		for page, err := range c.ListProjects(ctx, q) {
			if page != nil {
				r.learn(q.OrgID, page.Projects)
			}
			if !yield(page, err) {
				return
			}
		}
	}
}

func (r *neonRouter) learn(org string, ps []neon.ProjectSummary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		r.orgOf[p.ID] = org
	}
}

// call runs f with the client of the project's account, or, for a project no list showed, with
// each account's client until one does not answer 404.
func call[T any](r *neonRouter, projectID string, f func(*neon.Client) (T, error)) (T, error) {
	r.mu.Lock()
	org, known := r.orgOf[projectID]
	r.mu.Unlock()
	if known {
		return f(r.byOrg[org])
	}
	var zero T
	err := error(neon.ErrNotFound)
	for _, c := range r.clients {
		v, cerr := f(c)
		if !errors.Is(cerr, neon.ErrNotFound) {
			return v, cerr
		}
		err = cerr
	}
	return zero, err
}

func (r *neonRouter) GetProject(ctx context.Context, projectID string) (*neon.Project, error) {
	return call(r, projectID, func(c *neon.Client) (*neon.Project, error) { return c.GetProject(ctx, projectID) })
}

func (r *neonRouter) ListEndpoints(ctx context.Context, projectID string) ([]neon.Endpoint, error) {
	return call(r, projectID, func(c *neon.Client) ([]neon.Endpoint, error) { return c.ListEndpoints(ctx, projectID) })
}

// mutation is a mutating call's two results, so call can carry them.
type mutation[T any] struct {
	v   T
	ops []neon.Operation
}

func (r *neonRouter) UpdateProject(ctx context.Context, projectID string, u neon.ProjectUpdate) (*neon.Project, []neon.Operation, error) {
	m, err := call(r, projectID, func(c *neon.Client) (mutation[*neon.Project], error) {
		p, ops, err := c.UpdateProject(ctx, projectID, u)
		return mutation[*neon.Project]{p, ops}, err
	})
	return m.v, m.ops, err
}

func (r *neonRouter) SuspendEndpoint(ctx context.Context, projectID, endpointID string) (*neon.Endpoint, []neon.Operation, error) {
	m, err := call(r, projectID, func(c *neon.Client) (mutation[*neon.Endpoint], error) {
		e, ops, err := c.SuspendEndpoint(ctx, projectID, endpointID)
		return mutation[*neon.Endpoint]{e, ops}, err
	})
	return m.v, m.ops, err
}

func (r *neonRouter) UpdateEndpoint(ctx context.Context, projectID, endpointID string, u neon.EndpointUpdate) (*neon.Endpoint, []neon.Operation, error) {
	m, err := call(r, projectID, func(c *neon.Client) (mutation[*neon.Endpoint], error) {
		e, ops, err := c.UpdateEndpoint(ctx, projectID, endpointID, u)
		return mutation[*neon.Endpoint]{e, ops}, err
	})
	return m.v, m.ops, err
}

func (r *neonRouter) WaitOperations(ctx context.Context, projectID string, ops []neon.Operation) error {
	_, err := call(r, projectID, func(c *neon.Client) (struct{}, error) { return struct{}{}, c.WaitOperations(ctx, projectID, ops) })
	return err
}
