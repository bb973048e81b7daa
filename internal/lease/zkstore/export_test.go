package zkstore

import "context"

// Prune exposes prune to the external tests, which open stores through leasetest.
func (s *Store) Prune(ctx context.Context, job string, keep int) { s.prune(ctx, job, keep) }
