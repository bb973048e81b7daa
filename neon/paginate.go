package neon

import (
	"context"
	"fmt"
	"hash/maphash"
	"iter"
	"net/http"
	"net/url"
)

// DefaultMaxPages guards against a server that never stops paginating with fresh cursors:
// 1,000,000 projects at 100 a page, far beyond any org.
const DefaultMaxPages = 10_000

// listing is one cursor-paginated GET: what differs between the routes that page. Items are
// projects (P is the page type, T a project on it).
type listing[P, T any] struct {
	what   string // names the listing in errors: "consumption v2", "list projects"
	orgID  string
	route  string
	bucket *bucket
	query  url.Values // the fixed part; each page adds the cursor
	limit  int        // projects per page asked for: a shorter page is the last
	// maxPages ends a listing that pages on beyond it with ErrBadResponse; 0 means
	// DefaultMaxPages.
	maxPages int
	// want, when positive, is how many projects the request named (project_ids): once that
	// many were seen the listing is complete, so a full page needs no further request to
	// learn that it was the last.
	want int
	// budget, when set, grants every attempt of every page (AttemptBudget).
	budget *AttemptBudget
	// decode reads a page's projects and its cursor ("" when absent); an error is a bad body.
	decode func(body []byte) ([]T, string, error)
	id     func(T) string // the project id, to tell a replayed page
	page   func(items []T, cursor string) *P
}

// paginate reads every page of l by the pagination rules of the package doc: it stops after a
// page without a cursor, a page shorter than the limit or an empty page, and retries a page that
// replays an earlier cursor or project, failing with ErrBadResponse when the replay persists or
// after maxPages. Empty pages are not yielded; the last page yielded has Cursor "". A terminal
// error is yielded once as (nil, err).
func paginate[P, T any](ctx context.Context, c *Client, l listing[P, T]) iter.Seq2[*P, error] {
	return func(yield func(*P, error) bool) {
		var (
			cursor   string
			cursors  = map[string]struct{}{}
			projects = newSeenSet()
		)
		maxPages := l.maxPages
		if maxPages <= 0 {
			maxPages = DefaultMaxPages
		}
		for pageNo := 1; ; pageNo++ {
			if pageNo > maxPages {
				yield(nil, fmt.Errorf("%s org %q: more than %d pages, the cursor never ends: %w", l.what, l.orgID, maxPages, ErrBadResponse))
				return
			}
			items, next, err := fetchPage(ctx, c, &l, cursor, cursors, projects)
			if err != nil {
				yield(nil, fmt.Errorf("%s org %q page %d: %w", l.what, l.orgID, pageNo, err))
				return
			}
			for _, it := range items {
				projects.add(l.id(it))
			}
			// A full page with a cursor may be the last; only the next answer tells, unless every
			// project asked for is in.
			last := next == "" || len(items) < l.limit || (l.want > 0 && projects.len() >= l.want)
			if next != "" {
				cursors[next] = struct{}{}
			}
			if last {
				next = ""
			}
			if len(items) > 0 && !yield(l.page(items, next), nil) {
				return
			}
			if last {
				return
			}
			cursor = next
		}
	}
}

// fetchPage requests the page after cursor (the first page for "") and accepts it only if it
// replays nothing seen before, so a replay is retried like a bad body.
func fetchPage[P, T any](ctx context.Context, c *Client, l *listing[P, T], cursor string, cursors map[string]struct{}, projects *seenSet) ([]T, string, error) {
	query := l.query
	if cursor != "" {
		query = cloneValues(l.query)
		query.Set("cursor", cursor)
	}
	rq := &request{method: http.MethodGet, route: l.route, path: l.route, query: query, bucket: l.bucket, orgID: l.orgID, budget: l.budget}
	var (
		items []T
		next  string
	)
	err := c.do(ctx, rq, func(body []byte) error {
		got, n, err := l.decode(body)
		if err != nil {
			return err
		}
		if err := checkPage(n, got, cursor, cursors, projects, l.id); err != nil {
			return err
		}
		items, next = got, n
		return nil
	})
	return items, next, err
}

// checkPage rejects a non-empty page that repeats what came before: its cursor equals one
// already seen (including the one just sent), or it holds a project an earlier page (or itself)
// held. Both mean a stale or replayed page; accepting it would loop or double-count.
func checkPage[T any](next string, items []T, sent string, cursors map[string]struct{}, seen *seenSet, id func(T) string) error {
	if len(items) == 0 {
		return nil // the end of the list, whatever cursor it echoes
	}
	if next != "" {
		if _, dup := cursors[next]; dup || next == sent {
			return &pageError{reason: reasonRepeatedPage, detail: fmt.Sprintf("cursor %q repeated", clip([]byte(next)))}
		}
	}
	var here map[string]struct{}
	for _, it := range items {
		pid := id(it)
		if seen.has(pid) {
			return &pageError{reason: reasonRepeatedPage, detail: fmt.Sprintf("project %q already seen on an earlier page", pid)}
		}
		if here == nil {
			here = make(map[string]struct{}, len(items))
		}
		if _, dup := here[pid]; dup {
			return &pageError{reason: reasonRepeatedPage, detail: fmt.Sprintf("project %q twice on one page", pid)}
		}
		here[pid] = struct{}{}
	}
	return nil
}

// seenSet holds the projects a listing has returned, as 64-bit hashes under a seed of its own:
// a million ids cost about 16 MB instead of about 80 as strings. A collision (odds about 3 in
// 10⁸ at a million projects) reads as a replayed page: retried, then failed loudly, and the
// next listing draws another seed; it never passes a replay.
type seenSet struct {
	seed maphash.Seed
	m    map[uint64]struct{}
}

func newSeenSet() *seenSet { return &seenSet{seed: maphash.MakeSeed(), m: map[uint64]struct{}{}} }

func (s *seenSet) add(id string)      { s.m[maphash.String(s.seed, id)] = struct{}{} }
func (s *seenSet) has(id string) bool { _, ok := s.m[maphash.String(s.seed, id)]; return ok }
func (s *seenSet) len() int           { return len(s.m) }

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

// failed is a page sequence that yields err once: a query refused before any request.
func failed[P any](err error) iter.Seq2[*P, error] {
	return func(yield func(*P, error) bool) { yield(nil, err) }
}
