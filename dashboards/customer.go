package dashboards

import "strings"

// customerVar lists the Stripe customers account_history knows; panels read '${customer}'.
var customerVar = Variable{Name: "customer", Label: "Customer", Type: "query", Datasource: &clickhouseDS, Refresh: 1,
	Query: `SELECT DISTINCT customer_id FROM account_history WHERE customer_id != '' ORDER BY customer_id`}

// customerProjects narrows a read to the projects the customer ever owned.
const customerProjects = `project_id IN (SELECT project_id FROM account_history WHERE customer_id = '${customer}')`

// ownedUsage is finance's contract (docs/data-model.md, "Margin"): usage_facts FINAL summed over
// org_id per (project, metric, hour) in the time range, with the customer and plan in force at
// the hour (the account_history record with the greatest valid_from <= hour). filter narrows
// the projects read ("" reads every project).
func ownedUsage(filter string) string {
	and, where := "", ""
	if filter != "" {
		and, where = " AND "+filter, " WHERE "+filter
	}
	return `SELECT project_id, metric, hour, any(v) AS value,
        argMaxIf(cus, vf, vf <= hour) AS customer_id,
        argMaxIf(pl, vf, vf <= hour) AS plan
    FROM (
        SELECT project_id, metric, hour, sum(value) AS v
        FROM usage_facts FINAL
        WHERE $__timeFilter(hour)` + and + `
        GROUP BY project_id, metric, hour
    ) AS u ALL LEFT JOIN (
        SELECT project_id, valid_from AS vf, customer_id AS cus, plan AS pl
        FROM account_history FINAL` + where + `
    ) AS h USING project_id
    GROUP BY project_id, metric, hour`
}

// margin is the margin contract per customer, plan, month and metric over the time range, with
// the newest loaded cost table (neon_unit_costs, plan_unit_prices; migration 0011). Amounts
// are micro-units; panels divide by 1e6 for display only.
func margin(filter, customerWhere string) string {
	return `SELECT customer_id, plan, month, metric, raw, cost_micros, target,
        if(target = '', toUInt64(0), intDiv(raw + if(round_up = 1, toUInt64(greatest(divisor, 1) - 1), toUInt64(0)), greatest(divisor, 1))) AS units,
        units * price_micros AS revenue_micros
    FROM (
        SELECT customer_id, plan, month, metric, raw,
            intDiv(raw, greatest(cost_divisor, 1)) * cost_price + intDiv((raw % greatest(cost_divisor, 1)) * cost_price, greatest(cost_divisor, 1)) AS cost_micros
        FROM (
            SELECT customer_id, plan, toStartOfMonth(hour) AS month, metric, sum(value) AS raw
            FROM (` + ownedUsage(filter) + `)` + customerWhere + `
            GROUP BY customer_id, plan, month, metric
        ) AS m ANY LEFT JOIN (
            SELECT metric, divisor AS cost_divisor, price_micros AS cost_price
            FROM neon_unit_costs FINAL
            WHERE version = (SELECT max(version) FROM neon_unit_costs)
        ) AS c USING metric
    ) AS mc ANY LEFT JOIN (
        SELECT plan, metric, target, divisor, round_up, price_micros
        FROM plan_unit_prices FINAL
        WHERE version = (SELECT max(version) FROM plan_unit_prices)
    ) AS p USING (plan, metric)`
}

// indent shifts a nested query right, for readable panel SQL.
func indent(sql string) string { return strings.ReplaceAll(sql, "\n", "\n    ") }

// Customer is the customer drill-down: what one customer's invoice says and why.
func Customer() Dashboard {
	b := newDashboard("neonmeter-customer", "neonmeter — customer",
		"One Stripe customer: projects, plan history, usage, what was billed and what Stripe holds, late adjustments, enforcement, margin. The same as `neonmeter report customer`.", chVar, customerVar)
	b.d.Time = TimeRange{From: "now/M", To: "now"}
	b.sql("table", "Projects", "", "Projects the customer owns now, and since when (account_history).",
		`SELECT project_id, max(valid_from) AS since, if(argMax(plan, valid_from) = '', '(default)', argMax(plan, valid_from)) AS plan_name
FROM account_history FINAL
WHERE `+customerProjects+`
GROUP BY project_id
HAVING argMax(customer_id, valid_from) = '${customer}'
ORDER BY project_id`)
	b.sql("table", "Plan history", "", "Every recorded change of the customer's projects; the plan of an hour is the one in force at its start.",
		`SELECT valid_from, project_id, customer_id, if(plan = '', '(default)', plan) AS plan_name, toString(source) AS source, basis
FROM account_history FINAL
WHERE `+customerProjects+`
ORDER BY valid_from DESC, project_id
LIMIT 500`)
	b.sql("timeseries", "Usage per metric and hour (raw units)", "short", "Summed over the projects the customer owned at each hour.",
		`SELECT hour AS time, metric, sum(value) AS raw
FROM (`+indent(ownedUsage(customerProjects))+`)
WHERE customer_id = '${customer}'
GROUP BY time, metric
ORDER BY time`)
	b.sql("timeseries", "Billed units per meter per day", "short", "The ledger's newest value per hour (what billing sends), by Stripe meter or legacy price.",
		`SELECT toStartOfDay(hour) AS time, target, sum(value) AS units
FROM (
    SELECT target, hour, sink, argMax(value, version) AS value
    FROM billing_ledger
    WHERE customer_id = '${customer}' AND $__timeFilter(hour)
    GROUP BY target, hour, sink
)
GROUP BY time, target
ORDER BY time`)
	customerStripe(b)
	b.sql("table", "Margin per plan and metric", "", "Neon's cost and the plan's revenue (cost table, NEONMETER_COSTS_FILE) per month, in the table's currency.",
		`SELECT month, if(plan = '', '(default)', plan) AS plan_name, metric, raw, target, units, cost_micros / 1e6 AS cost, revenue_micros / 1e6 AS revenue,
    (toInt64(revenue_micros) - toInt64(cost_micros)) / 1e6 AS margin
FROM (`+indent(margin(customerProjects, "\n    WHERE customer_id = '${customer}'"))+`)
ORDER BY month, plan, metric`)
	return b.d
}

// customerStripe adds the Stripe side of the customer dashboard: Stripe-held against expected,
// late adjustments, enforcement.
func customerStripe(b *builder) {
	b.sql("table", "Stripe holds vs expected", "", "Ledger value and Stripe's confirmed value per target, corrected by the newest reconcile's drift.",
		`SELECT target, sink, expected, confirmed, confirmed + drift AS stripe_holds, drift
FROM (
    SELECT target, sink, sum(value) AS expected, sum(confirmed) AS confirmed
    FROM (
        SELECT target, hour, toString(sink) AS sink, argMax(value, version) AS value, argMax(confirmed_value, version) AS confirmed
        FROM billing_ledger
        WHERE customer_id = '${customer}' AND $__timeFilter(hour)
        GROUP BY target, hour, sink
    )
    GROUP BY target, sink
) AS l ANY LEFT JOIN (
    SELECT target, toString(sink) AS sink, sum(drift) AS drift
    FROM billing_drift
    WHERE customer_id = '${customer}' AND run_id = (SELECT argMax(run_id, started_at) FROM billing_reconcile_runs WHERE error = '')
    GROUP BY target, sink
) AS d USING (target, sink)
ORDER BY target, sink`)
	b.sql("table", "Late adjustments", "", "Revisions Stripe could no longer take: credit or charge them (docs/billing.md).",
		`SELECT detected_at, target, toString(sink) AS sink, toString(reason) AS reason, hour, old_value, new_value, amount
FROM billing_late_adjustments FINAL
WHERE customer_id = '${customer}' AND $__timeFilter(hour)
ORDER BY detected_at DESC
LIMIT 100`)
	b.sql("table", "Enforcement actions and alerts", "", "Decisions (warnings, throttles, suspensions, releases) and Neon actions on the customer's projects.",
		`SELECT at, project_id, plan, metric, level, action, mode, outcome, usage, limit_value
FROM enforcement_audit
WHERE `+customerProjects+` AND $__timeFilter(at)
ORDER BY at DESC
LIMIT 200`)
}

// financeMargin adds the margin panels of the finance dashboard.
func financeMargin(b *builder) {
	b.sql("table", "Margin per plan", "", "Revenue − Neon's cost per plan in the range (cost table NEONMETER_COSTS_FILE); the free plan is pure cost.",
		`SELECT if(plan = '', '(default)', plan) AS plan_name, uniqExact(customer_id) AS customers, sum(cost_micros) / 1e6 AS cost, sum(revenue_micros) / 1e6 AS revenue,
    (toInt64(sum(revenue_micros)) - toInt64(sum(cost_micros))) / 1e6 AS margin
FROM (`+indent(margin("", ""))+`)
GROUP BY plan_name
ORDER BY plan_name`)
	b.sql("table", "Customers costing more than they pay", "", "Negative margin in the range, worst first; customer '' is usage nobody owns.",
		`SELECT customer_id, any(plan) AS plan_name, sum(cost_micros) / 1e6 AS cost, sum(revenue_micros) / 1e6 AS revenue,
    (toInt64(sum(revenue_micros)) - toInt64(sum(cost_micros))) / 1e6 AS margin
FROM (`+indent(margin("", ""))+`)
GROUP BY customer_id
HAVING margin < 0
ORDER BY margin
LIMIT 50`)
}
