package chstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// testStore is the store on a migrated database of the test's own; the checks that read its
// tables directly use its Conn and DB.
type testStore struct{ *chstore.Store }

func newTestStore(t testing.TB) testStore {
	t.Helper()
	return testStore{chstore.New(chtest.New(t))}
}

// rows counts the rows of a table of the database.
func (s testStore) rows(t testing.TB, table string) uint64 {
	t.Helper()
	return chtest.Count(t, s.Conn, "SELECT count() FROM "+s.DB+"."+table)
}

// refusal is one bad edit of a valid item and what the refusal's error must say.
type refusal[T any] struct {
	name string
	edit func(*T)
	want string
}

// assertRefused writes, per case, the valid items good followed by base edited by the case:
// every write must fail with an error containing the case's want, and table must hold no row
// afterwards (one bad item refuses its whole batch).
func assertRefused[T any](t *testing.T, s testStore, table string, write func(context.Context, []T) error, base T, good []T, cases []refusal[T]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := base
			c.edit(&bad)
			err := write(t.Context(), append(slices.Clone(good), bad))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	if n := s.rows(t, table); n != 0 {
		t.Fatalf("%s has %d rows after refused writes", table, n)
	}
}
