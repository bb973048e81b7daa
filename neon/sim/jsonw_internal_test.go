package sim

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// TestAppendTime_MatchesTimeFormat over leap days, month ends and a long pseudo-random sample.
func TestAppendTime_MatchesTimeFormat(t *testing.T) {
	cases := []int64{0, 951782400, 951868799, 1709251200, 1709164800, 4102444799, 253402300799}
	x := uint64(1)
	for range 20000 {
		x = mix64(x)
		cases = append(cases, int64(x%253402300800))
	}
	for _, sec := range cases {
		want := time.Unix(sec, 0).UTC().Format(time.RFC3339)
		if got := string(appendTime(nil, sec)); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", sec, got, want)
		}
	}
}

func TestAppendUUID_Shape(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, v := range [][2]uint64{{0, 0}, {^uint64(0), ^uint64(0)}, {mix64(1), mix64(2)}} {
		if u := string(appendUUID(nil, v[0], v[1])); !re.MatchString(u) {
			t.Fatalf("appendUUID(%x, %x) = %s", v[0], v[1], u)
		}
	}
}

func TestAppendString_MatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "tab\tnew\nline\x01\x1f", "ünïcode ✓"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Fatalf("appendString(%q) = %s, decodes to %q (%v)", s, got, back, err)
		}
	}
}
