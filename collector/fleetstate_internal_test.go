package collector

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestFleetState_SortJoinAndTruncate(t *testing.T) {
	s := newFleetState(2)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"p-c", "p-a", "p-b"} {
		if err := s.add(0, id, now); err != nil {
			t.Fatal(err)
		}
	}
	n := len(s.projects)
	if err := s.add(1, "q-x", now); err != nil {
		t.Fatal(err)
	}
	s.truncate(n) // org 1's listing failed
	if err := s.add(1, "q-b", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.add(1, "p-a", now); err != nil { // the same id in another org is another project
		t.Fatal(err)
	}
	if err := s.sortByID(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range s.projects {
		got = append(got, fmt.Sprintf("%d:%s", s.projects[i].Org, s.id(int32(i))))
	}
	if fmt.Sprint(got) != "[0:p-a 0:p-b 0:p-c 1:p-a 1:q-b]" || s.orgEnd[0] != 3 || s.orgEnd[1] != 5 {
		t.Fatalf("sorted %v, org ends %v", got, s.orgEnd)
	}
	if s.projects[4].LastActive != 0 || s.projects[0].LastActive != uint32(now.Unix()) {
		t.Fatalf("last active not kept: %+v", s.projects)
	}
	var joined []int32
	next := s.join(0)
	for _, id := range []string{"p-0", "p-b", "p-bb", "p-c", "z"} {
		if err := next(id, func(i int32) { joined = append(joined, i) }); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(joined) != "[1 2]" {
		t.Fatalf("joined %v, want p-b and p-c of org 0", joined)
	}
	if err := next("p-a", func(int32) {}); err == nil {
		t.Fatal("ids out of order were accepted")
	}
	dup := newFleetState(1)
	_ = dup.add(0, "p-a", now)
	_ = dup.add(0, "p-a", now)
	if err := dup.sortByID(); err == nil {
		t.Fatal("a project listed twice was accepted")
	}
}

// BenchmarkFleetState1M builds a cycle's state of 1,000,000 listed projects (ids of Neon's
// shape, 22–28 bytes), sorts it and plans 150 calls: the collector's memory of a cycle
// before any call, reported as live heap after a GC.
func BenchmarkFleetState1M(b *testing.B) {
	const n = 1_000_000
	now := time.Date(2026, 11, 27, 12, 40, 0, 0, time.UTC)
	words := []string{"autumn", "bold", "crimson", "dawn", "frosty", "lively", "misty", "quiet"}
	var live uint64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newFleetState(3)
		for i := range n {
			id := fmt.Sprintf("%s-%s-%08d", words[i%8], words[(i/8)%8], (i*7919)%100_000_000)
			if err := s.add(uint16(i%3), id, now.Add(-time.Duration(i%200)*time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.sortByID(); err != nil {
			b.Fatal(err)
		}
		for i := range s.projects {
			s.projects[i].CompleteThrough = uint32(now.Truncate(time.Hour).Add(-time.Duration(i%100) * time.Hour).Unix())
		}
		p := PlanCycle(PlanInput{Now: now, Budget: 150, Projects: s.projects, Provisional: 2 * time.Hour, Lookback: 48 * time.Hour})
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		live = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(s)
		runtime.KeepAlive(p)
	}
	b.ReportMetric(float64(live)/(1<<20), "live-MiB")
}
