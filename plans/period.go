package plans

import "time"

// PeriodStart returns the start of the plan period holding t: the calendar month in UTC. Neon's
// own billing periods run by calendar month, the catalog's allowances are monthly, and billing's
// running totals (and so rounding) restart there. Billing and enforcement both use this one rule.
func PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PeriodEnd returns the end of the plan period holding t (exclusive).
func PeriodEnd(t time.Time) time.Time { return PeriodStart(t).AddDate(0, 1, 0) }
