package chstore_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/enforcement"
)

// The audit round-trips every field, newest first, at most the limit, of one project only.
func TestAuditOf_NewestFirstWithinTheLimit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var recs []enforcement.AuditRecord
	for i := range 5 {
		recs = append(recs, enforcement.AuditRecord{At: t0.Add(time.Duration(i) * time.Minute), CycleID: fmt.Sprintf("enforce-%d", i),
			ProjectID: "project-a", Plan: "free", Metric: "compute_unit_seconds", Usage: uint64(100 * i), Limit: 300,
			Level: enforcement.LevelOver, Action: "update_project", Reason: "suspend", Mode: enforcement.ModeEnforce,
			Before: "quota=0,0,0,0", After: "quota=1,0,0,0", OperationIDs: []string{fmt.Sprintf("op-%d", i)}, Outcome: enforcement.OutcomeApplied})
	}
	recs[4].Action, recs[4].Reason, recs[4].Outcome, recs[4].OperationIDs = enforcement.AuditDecision, "suspended (held: grace)", enforcement.OutcomeRecorded, nil
	recs[3].Outcome, recs[3].Error = enforcement.OutcomeFailed, "neon: 500"
	other := enforcement.AuditRecord{At: t0.Add(time.Hour), CycleID: "release", ProjectID: "project-b", Action: enforcement.AuditDecision,
		Reason: "release", Mode: enforcement.ModeDryRun, Outcome: enforcement.OutcomeRecorded}
	if err := s.InsertAudit(ctx, append(recs, other)); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertAudit(ctx, nil); err != nil {
		t.Fatalf("inserting no records: %v", err)
	}
	got, err := s.AuditOf(ctx, "project-a", 3)
	if err != nil {
		t.Fatal(err)
	}
	recs[4].OperationIDs = []string{} // stored as an empty array
	want := []enforcement.AuditRecord{recs[4], recs[3], recs[2]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit of project-a:\n%+v\nwant\n%+v", got, want)
	}
	if got, err := s.AuditOf(ctx, "project-b", 0); err != nil || len(got) != 1 || got[0].CycleID != "release" || got[0].Mode != enforcement.ModeDryRun {
		t.Fatalf("audit of project-b with limit 0 (read as 1): %+v, %v", got, err)
	}
}
