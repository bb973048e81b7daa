package main

import (
	"context"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/enforcement"
	"github.com/neonmeter/neonmeter/internal/redact"
)

// The stores below strip secrets from the error text a stage writes into its rows
// (collection_runs.error, enforcement_audit.error). The clients already redact what they
// return; this keeps a secret from reaching a table through any other error on the way.

// redactedRuns is a collector store (a sweep's or a budgeted cycle's) whose run rows carry no
// secret.
type redactedRuns struct {
	collector.FleetStore
	r *redact.Redactor
}

func (s redactedRuns) WriteRun(ctx context.Context, run collector.Run) error {
	run.Error = s.r.String(run.Error)
	return s.FleetStore.WriteRun(ctx, run)
}

// redactedAudit is an enforcement store whose audit rows carry no secret.
type redactedAudit struct {
	enforcement.Store
	r *redact.Redactor
}

func (s redactedAudit) InsertAudit(ctx context.Context, recs []enforcement.AuditRecord) error {
	clean := make([]enforcement.AuditRecord, len(recs))
	for i, rec := range recs {
		rec.Error = s.r.String(rec.Error)
		clean[i] = rec
	}
	return s.Store.InsertAudit(ctx, clean)
}
