package chstore_test

import (
	"testing"

	"github.com/neonmeter/neonmeter/enforcement/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
)

// newStore is the store on a migrated database of the test's own.
func newStore(t *testing.T) *chstore.Store {
	t.Helper()
	return chstore.New(chtest.New(t))
}
