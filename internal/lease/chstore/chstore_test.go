package chstore

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	const ttl = 60_000
	base := state{firstMs: 1_000_000, lastMs: 1_030_000, ttlMs: ttl, rows: 3, createdMs: 999_000}
	for _, c := range []struct {
		name     string
		mod      func(*state)
		free     bool
		expireMs uint64
	}{
		{"renewed and live", func(s *state) { s.nowMs = 1_050_000 }, false, 1_091_000},
		{"at the TTL, within the clock slack", func(s *state) { s.nowMs = 1_090_000 }, false, 1_091_000},
		{"past TTL and slack", func(s *state) { s.nowMs = 1_091_000 }, true, 1_091_000},
		{"released", func(s *state) { s.released, s.nowMs = true, 1_031_000 }, true, 1_030_000},
		// A creator that died before its first heartbeat: held for the contender's TTL after creation.
		{"empty, young", func(s *state) { s.rows, s.nowMs = 0, 1_050_000 }, false, 1_060_000},
		{"empty, old", func(s *state) { s.rows, s.nowMs = 0, 1_060_000 }, true, 1_060_000},
	} {
		s := base
		c.mod(&s)
		free, exp := judge(s, time.Minute)
		if free != c.free || exp != c.expireMs {
			t.Errorf("%s: judge = %v, %d; want %v, %d", c.name, free, exp, c.free, c.expireMs)
		}
	}
}

func TestParseGeneration(t *testing.T) {
	for name, want := range map[string]uint64{"lease_billing_1": 1, "lease_billing_12345": 12345} {
		if g, ok := parseGeneration(name, tablePrefix("billing")); !ok || g != want {
			t.Errorf("%s = %d, %v", name, g, ok)
		}
	}
	for _, name := range []string{"lease_billing_", "lease_billing_01", "lease_billing_x", "lease_billings_1", "lease_billing_1_2", "billing_ledger"} {
		if _, ok := parseGeneration(name, tablePrefix("billing")); ok {
			t.Errorf("%s parsed as a generation", name)
		}
	}
}
