package chstore

import (
	"time"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/schema"
)

// Statements lists billing's statements with sample arguments, in the order the registry
// (schema/registry_test.go) runs them: the golden catalog and the 18.16 and chDB checks.
func Statements() []schema.Query {
	from, to, collected, projects := schema.SampleFrom, schema.SampleTo, schema.SampleCollected, schema.SampleProjects()
	return []schema.Query{
		usageQuery([]string{"compute_unit_seconds", "written_data_bytes"}, from, to),
		usageTotalsQuery([]string{"compute_unit_seconds", "written_data_bytes"}, from, to),
		usageOfQuery([]string{"compute_unit_seconds"}, projects, from, to),
		insertLedgerQuery([]billing.LedgerRow{
			{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: billing.SinkMeter, Metric: "compute_unit_seconds",
				Value: 2, Revision: 1, Identifier: "nm1-sample", Status: billing.LedgerIntent, RecordedAt: collected, RunID: "run-sample", Version: 2},
			{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: billing.SinkMeter, Metric: "compute_unit_seconds",
				Value: 2, ConfirmedValue: 2, Revision: 1, Identifier: "nm1-sample", Status: billing.LedgerPushed, StripeID: "mtr_evt_sample",
				RequestID: "req_sample", HTTPStatus: 200, RecordedAt: collected, RunID: "run-sample", Version: 3, Accounted: 2},
		}),
		ledgerQuery(from, to),
		insertLateQuery([]billing.LateAdjustment{{CustomerID: "cus_sample", Target: "neon_compute", Hour: from, Sink: billing.SinkMeter, Revision: 2,
			Metric: "compute_unit_seconds", PeriodStart: from, PeriodEnd: from.AddDate(0, 1, 0), OldValue: 2, NewValue: 3, Amount: 1,
			Reason: billing.LateFinalized, DetectedAt: collected, RunID: "run-sample"}}),
		lateQuery(from, to),
		insertDriftQuery([]billing.Drift{{CheckedAt: collected, RunID: "run-sample", CustomerID: "cus_sample", Target: "neon_compute",
			Sink: billing.SinkMeter, Bucket: from, Expected: 2, Actual: 1, Drift: -1}}),
		driftQuery("run-sample"),
		insertReconcileRunQuery(billing.ReconcileRun{RunID: "run-sample", Trigger: billing.TriggerSchedule, StartedAt: collected, FinishedAt: collected,
			From: from, To: to, Compared: 3, Drifting: 1, DriftUnits: 1}),
		lastReconcilesQuery(),
		latestReconcileQuery(),
		driftByTargetQuery("run-sample"),
		laggingQuery(to),
	}
}

// laggingQuery lists the projects whose hours are not all final before to, with their
// collected and final ends from the budgeted collector's per-project progress
// (collection_progress) and the org's hourly watermark (1970 when none), which an explicit
// sweep advances for every project at once (Store.Lagging applies it). A project without
// progress rows is not listed (deployments from before the budgeted collector).
func laggingQuery(to time.Time) schema.Query {
	return schema.Query{Name: "billing.lagging", Kind: schema.KindSelect, Args: []any{schema.UTC(to)}, SQL: `SELECT project_id, ct, ft, wm
FROM (
    SELECT org_id, project_id, argMax(complete_through, updated_at) AS ct, argMax(final_through, updated_at) AS ft
    FROM {db}.collection_progress
    GROUP BY org_id, project_id
) AS progress ANY LEFT JOIN (
    SELECT org_id, max(covered_until) AS wm
    FROM (
        SELECT org_id, endpoint, argMax(covered_until, updated_at) AS covered_until
        FROM {db}.collection_watermarks
        WHERE granularity = 'hourly'
        GROUP BY org_id, endpoint
    )
    GROUP BY org_id
) AS watermarks USING org_id
WHERE ft < ?
ORDER BY project_id`}
}

// inArgs returns metrics, then ids, then from and to, as a statement's arguments.
func inArgs(metrics, ids []string, from, to time.Time) []any {
	args := make([]any, 0, len(metrics)+len(ids)+2)
	for _, m := range metrics {
		args = append(args, m)
	}
	for _, id := range ids {
		args = append(args, id)
	}
	return append(args, schema.UTC(from), schema.UTC(to))
}

// The usage reads return usage_hourly's rows (see docs/data-model.md) but read usage_facts FINAL
// filtered on key columns: on 18.16 a filter on the view applies after the view deduplicates
// the whole table. The sum runs over org_id only (a project belongs to one org); HAVING drops
// zero rows after deduplication, never before.
//
// sum(UInt64) wraps silently on 18.16 (and on current ClickHouse), so every sum comes with its
// Float64 twin, which cannot wrap: checkSum refuses a row whose twin reaches 2^63, and then the
// integer sum is exact (below 2^64) and checked against the int64 billing holds. HAVING tests
// the twin, as a wrapped sum may be 0.
const usageSums = `sum(value) AS v, sum(toFloat64(value)) AS f`

func usageQuery(metrics []string, from, to time.Time) schema.Query {
	return schema.Query{Name: "billing.usage", Kind: schema.KindSelect, Args: inArgs(metrics, nil, from, to), SQL: `SELECT project_id, metric, hour, ` + usageSums + `
FROM {db}.usage_facts FINAL
WHERE metric IN (` + schema.InList(len(metrics)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric, hour
HAVING f > 0
ORDER BY project_id, metric, hour`}
}

func usageTotalsQuery(metrics []string, from, to time.Time) schema.Query {
	return schema.Query{Name: "billing.usage_totals", Kind: schema.KindSelect, Args: inArgs(metrics, nil, from, to), SQL: `SELECT project_id, metric, ` + usageSums + `
FROM {db}.usage_facts FINAL
WHERE metric IN (` + schema.InList(len(metrics)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric
HAVING f > 0
ORDER BY project_id, metric`}
}

func usageOfQuery(metrics, projectIDs []string, from, to time.Time) schema.Query {
	return schema.Query{Name: "billing.usage_of", Kind: schema.KindSelect, Args: inArgs(metrics, projectIDs, from, to), SQL: `SELECT project_id, metric, hour, ` + usageSums + `
FROM {db}.usage_facts FINAL
WHERE metric IN (` + schema.InList(len(metrics)) + `) AND project_id IN (` + schema.InList(len(projectIDs)) + `) AND hour >= ? AND hour < ?
GROUP BY project_id, metric, hour
HAVING f > 0
ORDER BY project_id, metric, hour`}
}

// Enum columns take their values as plain strings: the driver does not convert named string
// types.
func insertLedgerQuery(rows []billing.LedgerRow) schema.Query {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = []any{r.CustomerID, r.Target, schema.UTC(r.Hour), string(r.Sink), r.Metric, r.Value, r.ConfirmedValue, r.Revision, r.Identifier,
			string(r.Status), r.StripeID, r.RequestID, r.HTTPStatus, schema.UTC(r.RecordedAt), r.RunID, r.Version, r.Accounted}
	}
	return schema.Query{Name: "billing.ledger_insert", Kind: schema.KindInsert, Rows: out,
		SQL: "INSERT INTO {db}.billing_ledger (customer_id, target, hour, sink, metric, value, confirmed_value, revision, identifier, status, stripe_id, request_id, http_status, recorded_at, run_id, version, accounted_value)"}
}

// The newest step is argMax by version (as FINAL would pick; two rows of one version are the
// same step written twice). Accounted is the newest row's accounted_value, never older rows:
// a background merge of the ReplacingMergeTree keeps only the newest version of a key, so a read
// of older rows would depend on whether a merge ran. A row written before migration 0010 holds
// -1, and only then are the older pushed/late rows still unmerged consulted.
func ledgerQuery(from, to time.Time) schema.Query {
	return schema.Query{Name: "billing.ledger", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to)}, SQL: `SELECT customer_id, target, hour, toString(sink),
    argMax(metric, version), argMax(value, version), argMax(confirmed_value, version), argMax(revision, version),
    argMax(identifier, version), argMax(toString(status), version), argMax(stripe_id, version), argMax(request_id, version),
    argMax(http_status, version), argMax(recorded_at, version), argMax(run_id, version), max(version),
    if(argMax(accounted_value, version) >= 0, argMax(accounted_value, version), argMaxIf(value, version, toString(status) IN ('pushed', 'late')))
FROM {db}.billing_ledger
WHERE hour >= ? AND hour < ?
GROUP BY customer_id, target, hour, sink
ORDER BY customer_id, target, hour, sink`}
}

func insertLateQuery(adj []billing.LateAdjustment) schema.Query {
	rows := make([][]any, len(adj))
	for i, a := range adj {
		rows[i] = []any{a.CustomerID, a.Target, schema.UTC(a.Hour), string(a.Sink), a.Revision, a.Metric, schema.UTC(a.PeriodStart), schema.UTC(a.PeriodEnd),
			a.OldValue, a.NewValue, a.Amount, string(a.Reason), schema.UTC(a.DetectedAt), a.RunID}
	}
	return schema.Query{Name: "billing.late_insert", Kind: schema.KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.billing_late_adjustments (customer_id, target, hour, sink, revision, metric, period_start, period_end, old_value, new_value, amount, reason, detected_at, run_id)"}
}

func lateQuery(from, to time.Time) schema.Query {
	return schema.Query{Name: "billing.late", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to)}, SQL: `SELECT customer_id, target, hour, toString(sink), revision, metric, period_start, period_end,
    old_value, new_value, amount, toString(reason), detected_at, run_id
FROM {db}.billing_late_adjustments FINAL
WHERE hour >= ? AND hour < ?
ORDER BY customer_id, target, hour, sink, revision`}
}

func insertDriftQuery(d []billing.Drift) schema.Query {
	rows := make([][]any, len(d))
	for i, x := range d {
		rows[i] = []any{schema.UTC(x.CheckedAt), x.RunID, x.CustomerID, x.Target, string(x.Sink), schema.UTC(x.Bucket), x.Expected, x.Actual, x.Drift}
	}
	return schema.Query{Name: "billing.drift_insert", Kind: schema.KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.billing_drift (checked_at, run_id, customer_id, target, sink, bucket, expected, actual, drift)"}
}

func driftQuery(runID string) schema.Query {
	return schema.Query{Name: "billing.drift", Kind: schema.KindSelect, Args: []any{runID}, SQL: `SELECT checked_at, run_id, customer_id, target, toString(sink), bucket, expected, actual, drift
FROM {db}.billing_drift
WHERE run_id = ?
ORDER BY customer_id, target, bucket`}
}

func insertReconcileRunQuery(r billing.ReconcileRun) schema.Query {
	var repair uint8
	if r.Repair {
		repair = 1
	}
	row := []any{r.RunID, string(r.Trigger), schema.UTC(r.StartedAt), schema.UTC(r.FinishedAt), schema.UTC(r.From), schema.UTC(r.To),
		r.Compared, r.Drifting, r.Unsettled, r.DriftUnits, repair, r.Error}
	return schema.Query{Name: "billing.reconcile_run_insert", Kind: schema.KindInsert, Rows: [][]any{row},
		SQL: "INSERT INTO {db}.billing_reconcile_runs (run_id, kind, started_at, finished_at, range_from, range_to, compared, drifting, unsettled, drift_units, repair, error)"}
}

func lastReconcilesQuery() schema.Query {
	return schema.Query{Name: "billing.reconcile_last", Kind: schema.KindSelect, SQL: `SELECT toString(kind), max(started_at)
FROM {db}.billing_reconcile_runs
WHERE error = ''
GROUP BY kind
ORDER BY kind`}
}

func latestReconcileQuery() schema.Query {
	return schema.Query{Name: "billing.reconcile_latest", Kind: schema.KindSelect, SQL: `SELECT run_id, toString(kind), started_at, finished_at, range_from, range_to,
    compared, drifting, unsettled, drift_units, repair
FROM {db}.billing_reconcile_runs
WHERE error = ''
ORDER BY started_at DESC, finished_at DESC, run_id DESC
LIMIT 1`}
}

// |drift| is summed as Float64, which cannot wrap (abs of the smallest Int64 would).
func driftByTargetQuery(runID string) schema.Query {
	return schema.Query{Name: "billing.drift_by_target", Kind: schema.KindSelect, Args: []any{runID}, SQL: `SELECT toString(sink), target, count(), sum(abs(toFloat64(drift)))
FROM {db}.billing_drift
WHERE run_id = ?
GROUP BY sink, target
ORDER BY sink, target`}
}
