package runid_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/runid"
)

func TestNew_FormatAndUniqueness(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 29, 0, 0, time.FixedZone("x", 3600))
	re := regexp.MustCompile(`^push-20261203T092900Z-[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := runid.New("push", at)
		if !re.MatchString(id) {
			t.Fatalf("%q does not match %s", id, re)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}
