package chstore

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
)

// The tests' first usage hour, and the instant their rows are recorded at.
var (
	h0  = time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

// newTestStore is the store on a migrated database of the test's own; tests that write or
// read its tables directly use its conn and db.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	return New(chtest.New(t))
}
