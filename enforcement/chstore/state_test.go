package chstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// States round-trip every field; the highest version of a project wins; zero times stay zero.
func TestStates_RoundTripAndLatestVersionWins(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if got, err := s.States(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty table: %v, %v", got, err)
	}
	a1 := enforcement.State{ProjectID: "project-a", PeriodStart: t0, Plan: "free", Level: enforcement.LevelWarning,
		Seen: enforcement.Seen{Applied: "normal q=0,0,0,0 d=0,0,0"}, UpdatedAt: t0.Add(time.Hour), Version: 1}
	a2 := enforcement.State{ProjectID: "project-a", PeriodStart: t0, Plan: "free", Level: enforcement.LevelOver,
		OverSince: t0.Add(2 * time.Hour), ReleasedPeriod: t0, Seen: enforcement.Seen{Applied: "suspended q=1,0,0,0 d=0.25,0.5,300",
			EndpointsPending: true, ObservedAt: t0.Add(3 * time.Hour), Gone: true, Prior: "q=0,5,0,0,0 d=0.25,2,0 e=ep-a:0.25:2", IdleOverMax: 3},
		UpdatedAt: t0.Add(3 * time.Hour), Version: 2}
	b := enforcement.State{ProjectID: "project-b", PeriodStart: t0, Plan: "pro", Level: enforcement.LevelOK, UpdatedAt: t0, Version: 7}
	// The newer version first: the order of inserts does not decide, the version does.
	if err := s.WriteStates(ctx, []enforcement.State{a2, b}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteStates(ctx, []enforcement.State{a1}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteStates(ctx, nil); err != nil {
		t.Fatalf("writing no states: %v", err)
	}
	got, err := s.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["project-a"] != a2 || got["project-b"] != b {
		t.Fatalf("states %+v\nwant a %+v\nand b %+v", got, a2, b)
	}
	if !got["project-b"].OverSince.IsZero() || !got["project-b"].ObservedAt.IsZero() || !got["project-b"].ReleasedPeriod.IsZero() {
		t.Fatalf("zero times came back as %+v", got["project-b"])
	}
}

func TestWriteStates_RefusesRowsWithoutProjectOrVersion(t *testing.T) {
	s := newStore(t)
	for _, st := range []enforcement.State{{ProjectID: "project-a"}, {Version: 1}} {
		if err := s.WriteStates(context.Background(), []enforcement.State{st}); err == nil {
			t.Errorf("%+v was written", st)
		}
	}
}

// The newest breaker event (highest version) is returned whatever the order of inserts; none
// is the zero value; events without a kind or version are refused.
func TestBreakerEvents_LastWins(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if e, err := s.LastBreakerEvent(ctx); err != nil || e != (enforcement.BreakerEvent{}) || e.Latched() {
		t.Fatalf("empty table: %+v, %v", e, err)
	}
	trip := enforcement.BreakerEvent{At: t0, Kind: enforcement.BreakerTripped, CycleID: "enforce-1", Enforcing: 120, Cap: 100, Version: 10}
	ack := enforcement.BreakerEvent{At: t0.Add(time.Hour), Kind: enforcement.BreakerAcknowledged, CycleID: "ack", Enforcing: 120, Cap: 100, Version: 11}
	for _, e := range []enforcement.BreakerEvent{ack, trip} {
		if err := s.InsertBreakerEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if e, err := s.LastBreakerEvent(ctx); err != nil || e != ack || e.Latched() {
		t.Fatalf("last event %+v (%v), want the acknowledgement %+v", e, err, ack)
	}
	for _, bad := range []enforcement.BreakerEvent{{Kind: enforcement.BreakerTripped}, {Version: 1}} {
		if err := s.InsertBreakerEvent(ctx, bad); err == nil {
			t.Errorf("%+v was written", bad)
		}
	}
}

// The at-risk set is the projects whose newest row says at risk: a project that left (a newer
// row with at_risk 0) is out even though its older row said 1, whatever the order of inserts.
func TestAtRisk_NewestRowOfEachProjectDecides(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if got, err := s.AtRiskSet(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty table: %v, %v", got, err)
	}
	row := func(id string, at bool, minute int) enforcement.AtRiskRow {
		r := enforcement.AtRiskRow{ProjectID: id, OrgID: "org-a", AtRisk: at, UpdatedAt: t0.Add(time.Duration(minute) * time.Minute),
			RunID: "enforce-" + id}
		if at {
			r.Reason = "over compute_unit_seconds"
		}
		return r
	}
	// project-a entered then left (the leave inserted first); project-b left then entered again;
	// project-c entered only.
	if err := s.WriteAtRisk(ctx, []enforcement.AtRiskRow{row("project-a", false, 2), row("project-b", true, 3)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAtRisk(ctx, []enforcement.AtRiskRow{row("project-a", true, 1), row("project-b", false, 2), row("project-c", true, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAtRisk(ctx, nil); err != nil {
		t.Fatalf("writing no rows: %v", err)
	}
	got, err := s.AtRiskSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]enforcement.AtRiskRow{"project-b": row("project-b", true, 3), "project-c": row("project-c", true, 1)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("at-risk set\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []enforcement.AtRiskRow{{UpdatedAt: t0}, {ProjectID: "project-d"}} {
		if err := s.WriteAtRisk(ctx, []enforcement.AtRiskRow{bad}); err == nil {
			t.Errorf("%+v was written", bad)
		}
	}
}
