package chstore

import (
	"time"

	"github.com/neonmeter/neonmeter/schema"
)

// Statements lists finance's statements with sample arguments, in the order the registry
// (schema/registry_test.go) runs them: the golden catalog and the 18.16 and chDB checks.
func Statements() []schema.Query {
	from, to, at := schema.SampleFrom, schema.SampleTo, schema.SampleCollected
	return []schema.Query{
		insertCostsQuery([][]any{{"compute_unit_seconds", "CU-hour", uint64(3600), uint64(160000), "usd", "scale", schema.UTC(at), uint64(1)}}),
		insertPricesQuery([][]any{{"pro", "compute_unit_seconds", "neon_compute", "CU-hour", uint64(3600), uint8(0), uint64(200000), "usd", schema.UTC(at), uint64(1)}}),
		marginQuery("", from, to),
		marginQuery("cus_sample", from, to),
		hourlyQuery("cus_sample", from, to),
		projectsQuery("cus_sample", to),
		billedQuery("", from, to),
		billedQuery("cus_sample", from, to),
		driftQuery("", from, to),
		lateQuery("cus_sample", from, to),
		actionsQuery("cus_sample", from, to),
	}
}

func insertCostsQuery(rows [][]any) schema.Query {
	return schema.Query{Name: "finance.costs_insert", Kind: schema.KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.neon_unit_costs (metric, unit, divisor, price_micros, currency, neon_plan, loaded_at, version)"}
}

func insertPricesQuery(rows [][]any) schema.Query {
	return schema.Query{Name: "finance.prices_insert", Kind: schema.KindInsert, Rows: rows,
		SQL: "INSERT INTO {db}.plan_unit_prices (plan, metric, target, unit, divisor, round_up, price_micros, currency, loaded_at, version)"}
}

// customerProjects narrows a read to the projects a customer ever owned; the customer of each
// hour is still decided by the hour rule, so a project that moved away is not billed to it.
const customerProjects = ` AND project_id IN (SELECT project_id FROM {db}.account_history WHERE customer_id = ?)`

// ownedUsage is usage_hourly's rows of [from, to) (read as usage_facts FINAL on its key columns,
// summed over org_id as billing does) with the customer and plan in force at each hour: the
// account_history record with the greatest valid_from <= hour (the hour rule). ClickHouse 18.16
// has no ASOF JOIN, so every record of the project joins and argMaxIf picks; an hour before the
// project's first record, or of a project never recorded, belongs to customer "" (nobody).
// Arguments: from, to, then the customer twice when filtered.
func ownedUsage(filtered bool) string {
	filter := ""
	if filtered {
		filter = customerProjects
	}
	return `SELECT project_id, metric, hour, any(v) AS value,
        argMaxIf(cus, vf, vf <= hour) AS customer_id,
        argMaxIf(pl, vf, vf <= hour) AS plan
    FROM (
        SELECT project_id, metric, hour, sum(value) AS v
        FROM {db}.usage_facts FINAL
        WHERE hour >= ? AND hour < ?` + filter + `
        GROUP BY project_id, metric, hour
    ) AS u ALL LEFT JOIN (
        SELECT project_id, valid_from AS vf, customer_id AS cus, plan AS pl
        FROM {db}.account_history FINAL
        WHERE 1` + filter + `
    ) AS h USING project_id
    GROUP BY project_id, metric, hour`
}

// usageArgs returns a read's arguments: from, to, then the customer twice for ownedUsage's
// filters and once more for the outer one.
func usageArgs(customer string, from, to time.Time) []any {
	args := []any{schema.UTC(from), schema.UTC(to)}
	if customer != "" {
		args = append(args, customer, customer, customer)
	}
	return args
}

func customerWhere(customer, column string) string {
	if customer == "" {
		return ""
	}
	return "\n    WHERE " + column + " = ?"
}

// marginQuery is the margin contract (docs/data-model.md): per customer, plan, month and metric,
// the raw usage, Neon's cost floor(raw × price ÷ divisor) computed exactly in UInt64 (see
// migration 0011), and the plan's units (billing's rounding of the month's total) × its price.
// Only the newest load of each price table counts. greatest(…, 1) keeps intDiv defined on rows
// the LEFT JOINs left without a price (their price is 0).
func marginQuery(customer string, from, to time.Time) schema.Query {
	name := "finance.margin"
	if customer != "" {
		name = "finance.margin_customer"
	}
	return schema.Query{Name: name, Kind: schema.KindSelect, Args: usageArgs(customer, from, to), SQL: `SELECT customer_id, plan, month, metric, raw, cost_micros, target,
    if(target = '', toUInt64(0), intDiv(raw + if(round_up = 1, toUInt64(greatest(divisor, 1) - 1), toUInt64(0)), greatest(divisor, 1))) AS units,
    units * price_micros AS revenue_micros
FROM (
    SELECT customer_id, plan, month, metric, raw,
        intDiv(raw, greatest(cost_divisor, 1)) * cost_price + intDiv((raw % greatest(cost_divisor, 1)) * cost_price, greatest(cost_divisor, 1)) AS cost_micros
    FROM (
        SELECT customer_id, plan, toStartOfMonth(hour) AS month, metric, sum(value) AS raw
        FROM (` + ownedUsage(customer != "") + `)` + customerWhere(customer, "customer_id") + `
        GROUP BY customer_id, plan, month, metric
    ) AS m ANY LEFT JOIN (
        SELECT metric, divisor AS cost_divisor, price_micros AS cost_price
        FROM {db}.neon_unit_costs FINAL
        WHERE version = (SELECT max(version) FROM {db}.neon_unit_costs)
    ) AS c USING metric
) AS mc ANY LEFT JOIN (
    SELECT plan, metric, target, divisor, round_up, price_micros
    FROM {db}.plan_unit_prices FINAL
    WHERE version = (SELECT max(version) FROM {db}.plan_unit_prices)
) AS p USING (plan, metric)
ORDER BY customer_id, plan, month, metric`}
}

func hourlyQuery(customer string, from, to time.Time) schema.Query {
	return schema.Query{Name: "finance.hourly", Kind: schema.KindSelect, Args: usageArgs(customer, from, to), SQL: `SELECT metric, hour, sum(value) AS raw
FROM (` + ownedUsage(true) + `)
WHERE customer_id = ?
GROUP BY metric, hour
ORDER BY metric, hour`}
}

func projectsQuery(customer string, to time.Time) schema.Query {
	return schema.Query{Name: "finance.projects", Kind: schema.KindSelect, Args: []any{schema.UTC(to), customer}, SQL: `SELECT project_id, valid_from, customer_id, plan
FROM {db}.account_history FINAL
WHERE valid_from < ?` + customerProjects + `
ORDER BY project_id, valid_from`}
}

// billedQuery sums the ledger's newest step per (customer, target, hour, sink), as FINAL picks.
func billedQuery(customer string, from, to time.Time) schema.Query {
	args := []any{schema.UTC(from), schema.UTC(to)}
	filter := ""
	if customer != "" {
		args, filter = append(args, customer), " AND customer_id = ?"
	}
	name := "finance.billed"
	if customer != "" {
		name = "finance.billed_customer"
	}
	return schema.Query{Name: name, Kind: schema.KindSelect, Args: args, SQL: `SELECT customer_id, target, sink, any(metric), count(), sum(value), sum(confirmed)
FROM (
    SELECT customer_id, target, hour, toString(sink) AS sink, argMax(metric, version) AS metric,
        argMax(value, version) AS value, argMax(confirmed_value, version) AS confirmed
    FROM {db}.billing_ledger
    WHERE hour >= ? AND hour < ?` + filter + `
    GROUP BY customer_id, target, hour, sink
)
GROUP BY customer_id, target, sink
ORDER BY customer_id, target, sink`}
}

// driftQuery reads the newest reconcile run that checked the range (billing_reconcile_runs)
// and its drift rows.
func driftQuery(customer string, from, to time.Time) schema.Query {
	return schema.Query{Name: "finance.drift", Kind: schema.KindSelect, Args: []any{schema.UTC(to), schema.UTC(from), customer, customer}, SQL: `SELECT run_id, checked_at, customer_id, target, toString(sink), bucket, expected, actual, drift
FROM {db}.billing_drift
WHERE run_id = (
    SELECT argMax(run_id, started_at) FROM {db}.billing_reconcile_runs
    WHERE error = '' AND range_from < ? AND range_to > ?
) AND (customer_id = ? OR ? = '')
ORDER BY customer_id, target, bucket`}
}

func lateQuery(customer string, from, to time.Time) schema.Query {
	return schema.Query{Name: "finance.late", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to), customer, customer}, SQL: `SELECT customer_id, target, toString(sink), metric, toString(reason), hour, detected_at, old_value, new_value, amount
FROM {db}.billing_late_adjustments FINAL
WHERE hour >= ? AND hour < ? AND (customer_id = ? OR ? = '')
ORDER BY customer_id, target, hour, revision`}
}

func actionsQuery(customer string, from, to time.Time) schema.Query {
	return schema.Query{Name: "finance.actions", Kind: schema.KindSelect, Args: []any{schema.UTC(from), schema.UTC(to), customer}, SQL: `SELECT at, project_id, plan, metric, level, action, mode, outcome, usage, limit_value
FROM {db}.enforcement_audit
WHERE at >= ? AND at < ?` + customerProjects + `
ORDER BY at, project_id`}
}
