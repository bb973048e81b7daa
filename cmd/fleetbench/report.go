package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// freshnessGoal is the goal for the active and at-risk tiers.
const freshnessGoal = 75 * time.Minute

// hourRow is one row of the report: the simulated interval [from, to).
type hourRow struct {
	from, to       time.Time
	calls, limited int64 // consumption calls served (or faulted) and refused by the bucket
	other          int64 // every other API call
	budget         float64
	busy           float64 // share of the interval a collection child ran
	active         freshness
	tiers          map[string]tierStat
	covered        uint64
	tierErr        error
	maxRSS         int64
	runs, failed   int
}

// rows turns the samples into report rows, one per pair of consecutive samples.
func (r *result) rows() []hourRow {
	s := slices.Clone(r.samples)
	slices.SortFunc(s, func(a, b sample) int { return a.at.Compare(b.at) })
	var out []hourRow
	for i := 1; i < len(s); i++ {
		a, b := s[i-1], s[i]
		if !b.at.After(a.at) {
			continue
		}
		row := hourRow{from: a.at, to: b.at, active: b.active, tiers: b.tiers, covered: b.covered, tierErr: b.err,
			budget: r.opts.Budget * b.at.Sub(a.at).Minutes()}
		row.limited = b.stats.ConsumptionRateLimited - a.stats.ConsumptionRateLimited
		row.calls = b.stats.ConsumptionRequests - a.stats.ConsumptionRequests - row.limited
		row.other = total(b.stats.Requests) - total(a.stats.Requests) - (b.stats.ConsumptionRequests - a.stats.ConsumptionRequests)
		for _, c := range r.children {
			if c.name == "migrate" {
				continue
			}
			lo, hi := maxTime(c.start, a.at), minTime(c.end, b.at)
			if hi.After(lo) {
				row.busy += hi.Sub(lo).Seconds() / b.at.Sub(a.at).Seconds()
			}
			if !c.end.Before(a.at) && c.end.Before(b.at) {
				row.runs++
				row.maxRSS = max(row.maxRSS, c.maxRSS)
				if c.err != nil {
					row.failed++
				}
			}
		}
		out = append(out, row)
	}
	return out
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// age is how long before at the tier's oldest project is complete; -1 when unknown.
func age(tiers map[string]tierStat, tier string, at time.Time) time.Duration {
	t, ok := tiers[tier]
	if !ok || t.oldest.IsZero() {
		return -1
	}
	return at.Sub(t.oldest)
}

// oldest is the oldest complete_through of every tier's projects, as an age at at.
func oldest(tiers map[string]tierStat, at time.Time) time.Duration {
	worst := time.Duration(-1)
	for name := range tiers {
		worst = max(worst, age(tiers, name, at))
	}
	return worst
}

// atRiskTier is the tier whose freshness the report shows beside the active projects': the
// collector's at_risk, or in fullsweep mode the one tier every project is in.
func (r *result) atRiskTier() string {
	if r.opts.Mode == modeFullsweep {
		return "all"
	}
	return "at_risk"
}

// fleet is how many projects the children collect.
func (r *result) fleet() uint64 {
	var n uint64
	for _, o := range r.orgs {
		n += uint64(len(o.projects))
	}
	return n
}

func (f freshness) String() string {
	s := fmtAge(f.worst)
	if f.never > 0 {
		s += fmt.Sprintf(", %d never", f.never)
	}
	return s
}

func fmtAge(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%.1fh", d.Hours())
}

func fmtMB(b int64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%d MB", b>>20)
}

// writeReport prints one run's table and summary as markdown.
func writeReport(w io.Writer, r *result) {
	o := r.opts
	fmt.Fprintf(w, "\n## fleetbench %s: %d projects, %.0f %% active, budget %g calls/min, %d h at %v per simulated hour\n\n",
		o.Mode, o.Projects, 100*o.ActiveShare, o.Budget, o.Hours, o.Hour)
	fmt.Fprintf(w, "Day %s .. %s (simulated); cycles every %v; clock `%s`; database %s; logs %s\n\n",
		r.dayStart.Format(time.RFC3339), r.dayEnd.Format(time.RFC3339), o.Cycle, r.clock, r.database, r.logDir)
	risk := r.atRiskTier()
	fmt.Fprintln(w, "| Hour | Phase | Consumption calls | of budget | 429s | Other calls | Busy | Active projects | Active fresh | At-risk fresh | Oldest | Uncollected | Collector RSS | Runs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, row := range r.rows() {
		phase := "day"
		if !row.from.Before(r.dayEnd) {
			phase = "settle"
		}
		progress := fmt.Sprintf("%d | %s | %s | %s | %d", row.active.projects, row.active, fmtAge(age(row.tiers, risk, row.to)),
			fmtAge(oldest(row.tiers, row.to)), r.fleet()-min(row.covered, r.fleet()))
		if row.tierErr != nil {
			progress = "error: " + strings.ReplaceAll(row.tierErr.Error(), "|", "/") + " | | | |"
		}
		runs := fmt.Sprint(row.runs)
		if row.failed > 0 {
			runs += fmt.Sprintf(" (%d failed)", row.failed)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f %% | %d | %d | %.0f %% | %s | %s | %s |\n",
			row.from.Format("01-02 15:04"), phase, row.calls, 100*float64(row.calls)/row.budget, row.limited, row.other,
			100*min(row.busy, 1), progress, fmtMB(row.maxRSS), runs)
	}
	writeSummary(w, r)
}

// summary is a run's headline numbers, for its report and the comparison of modes.
type summary struct {
	calls                    int64
	overBudget, underWorking int // hours above the budget; busy hours under 90 % of it
	worstActive, worstRisk   time.Duration
	worstOldest              time.Duration
	activeNever              int // active project-hours of the day never collected
	maxRSS                   int64
	failed                   int
}

func (r *result) summarize() summary {
	s := summary{worstActive: -1, worstRisk: -1, worstOldest: -1}
	risk := r.atRiskTier()
	for _, row := range r.rows() {
		s.calls += row.calls
		if float64(row.calls) > row.budget+float64(r.opts.Burst) { // the bucket's burst
			s.overBudget++
		}
		if row.busy >= 0.99 && row.to.Sub(row.from) == time.Hour && float64(row.calls) < 0.9*row.budget {
			s.underWorking++
		}
		if row.from.Before(r.dayEnd) {
			s.worstActive = max(s.worstActive, row.active.worst)
			s.activeNever += row.active.never
			s.worstRisk = max(s.worstRisk, age(row.tiers, risk, row.to))
			s.worstOldest = max(s.worstOldest, oldest(row.tiers, row.to))
		}
	}
	for _, c := range r.children {
		s.maxRSS = max(s.maxRSS, c.maxRSS)
		if c.err != nil {
			s.failed++
		}
	}
	return s
}

func writeSummary(w io.Writer, r *result) {
	s, v := r.summarize(), r.verify
	fmt.Fprintf(w, "\n- Consumption calls: %d; hours above the budget: %d; fully busy hours under 90 %% of it: %d.\n", s.calls, s.overBudget, s.underWorking)
	fmt.Fprintf(w, "- Worst freshness during the day: projects active in the hour %s (%d active project-hours never collected), at-risk %s (goal ≤ %s); oldest project %s.\n",
		fmtAge(s.worstActive), s.activeNever, fmtAge(s.worstRisk), fmtAge(freshnessGoal), fmtAge(s.worstOldest))
	settled := "not within --settle or --max-real"
	if !r.settled.IsZero() {
		settled = fmtAge(r.settled.Sub(r.dayEnd)) + " after the day"
	}
	fmt.Fprintf(w, "- Day complete and final: %s. Collector peak RSS %s (goal < 256 MB); harness (simulator, verification) %s.\n",
		settled, fmtMB(s.maxRSS), fmtMB(r.harnessRSS))
	fmt.Fprintf(w, "- Real time: setup %v, cycles %v, verification %v; %d collector runs, %d failed.\n",
		r.setup.Round(time.Millisecond), r.loop.Round(time.Millisecond), r.verifyTime.Round(time.Millisecond), len(r.children)-1, s.failed)
	verdict := "**equal to the ground truth**"
	if !v.ok() {
		verdict = "**DIFFERENT from the ground truth**"
	}
	fmt.Fprintf(w, "- Verification of %d projects × metrics × %d hours: %d non-zero values, %d matched, %d mismatched, %d missing, %d extra: %s.\n",
		v.projects, r.opts.Hours, v.values, v.matched, v.mismatched, v.missing, v.extra, verdict)
	for _, e := range v.examples {
		fmt.Fprintf(w, "  - %s\n", e)
	}
	shown := 0
	for _, c := range r.children {
		if c.err != nil && shown < 2 {
			shown++
			fmt.Fprintf(w, "- %s failed at %s: %v\n\n```\n%s\n```\n", c.name, c.end.Format(time.RFC3339), c.err, strings.TrimSpace(c.tail))
		}
	}
}

// writeComparison prints the modes side by side.
func writeComparison(w io.Writer, results []*result) {
	fmt.Fprintln(w, "\n## Side by side")
	fmt.Fprintln(w, "\n| Mode | Consumption calls | Hours over budget | Busy hours < 90 % | Worst active | Active never | Worst at-risk | Worst oldest | Complete after day | Collector RSS | Mismatched / missing / extra |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.summarize()
		settled := "—"
		if !r.settled.IsZero() {
			settled = fmtAge(r.settled.Sub(r.dayEnd))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %s | %d | %s | %s | %s | %s | %d / %d / %d |\n",
			r.opts.Mode, s.calls, s.overBudget, s.underWorking, fmtAge(s.worstActive), s.activeNever, fmtAge(s.worstRisk),
			fmtAge(s.worstOldest), settled, fmtMB(s.maxRSS), r.verify.mismatched, r.verify.missing, r.verify.extra)
	}
}
