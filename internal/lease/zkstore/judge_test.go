package zkstore

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	base := current{rec: record{Generation: 3, TTLMs: 6000}, mtimeMs: 1_000_000}
	for _, c := range []struct {
		name  string
		mod   func(*current)
		nowMs int64
		free  bool
	}{
		{"renewed and live", nil, 1_003_000, false},
		{"at the TTL, within the clock slack", nil, 1_006_000, false},
		{"past TTL and slack", nil, 1_006_500, true},
		{"released", func(c *current) { c.rec.Released = true }, 1_000_001, true},
	} {
		cur := base
		if c.mod != nil {
			c.mod(&cur)
		}
		if free := judge(cur, c.nowMs); free != c.free {
			t.Errorf("%s: judge = %v, want %v", c.name, free, c.free)
		}
	}
	if got := base.sinceMs(); got != 1_000_000 {
		t.Errorf("before the first heartbeat the acquisition is the mtime: %d", got)
	}
	base.rec.SinceMs = 990_000
	if got := base.sinceMs(); got != 990_000 {
		t.Errorf("since once recorded: %d", got)
	}
}

func TestSequenceAndRoot(t *testing.T) {
	for name, want := range map[string]uint64{"e-0000000007": 7, "/r/db/history/billing/e-0000000123": 123} {
		if n, ok := sequence(name); !ok || n != want {
			t.Errorf("sequence(%q) = %d, %v", name, n, ok)
		}
	}
	for _, name := range []string{"x-0000000001", "e-", "e-12a", "/r/history/billing"} {
		if _, ok := sequence(name); ok {
			t.Errorf("sequence(%q) accepted", name)
		}
	}
	for _, root := range []string{"/neonmeter", "/clickhouse/neonmeter", "/a.b/c-d/e_f"} {
		if err := CheckRoot(root); err != nil {
			t.Errorf("CheckRoot(%q): %v", root, err)
		}
	}
	for _, root := range []string{"", "/", "neonmeter", "/neonmeter/", "//x", "/a/../b", "/a/.", "/a b", "/zookeeper/../x"} {
		if err := CheckRoot(root); err == nil {
			t.Errorf("CheckRoot(%q) accepted", root)
		}
	}
}

func TestSuperseded_End(t *testing.T) {
	p := superseded{Generation: 4, LastMs: 2_000_000, TTLMs: 6000}
	if got := p.end(); !got.Equal(time.UnixMilli(2_006_000)) {
		t.Errorf("an expired generation ends at its last heartbeat plus TTL: %s", got)
	}
	p.Released = true
	if got := p.end(); !got.Equal(time.UnixMilli(2_000_000)) {
		t.Errorf("a released generation ends at its release: %s", got)
	}
}
