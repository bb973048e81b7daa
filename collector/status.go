package collector

import (
	"context"
	"sort"
	"time"
)

// Status is an org's collection coverage.
type Status struct {
	Watermark    time.Time
	HasWatermark bool
	Runs         []Run // newest first
	Gaps         []Range
}

// ReadStatus reads the watermark and the runs of the last window, and finds the hours in
// [last complete hour − window, last complete hour) that no successful hourly sweep covered.
func ReadStatus(ctx context.Context, s StatusReader, orgID string, ep Endpoint, now time.Time, window time.Duration) (Status, error) {
	var st Status
	var err error
	st.Watermark, st.HasWatermark, err = s.Watermark(ctx, Feed{OrgID: orgID, Endpoint: ep, Granularity: GranularityHourly})
	if err != nil {
		return st, err
	}
	to := now.UTC().Truncate(time.Hour)
	from := to.Add(-window).Truncate(time.Hour)
	// Sweeps re-read a lookback, so a run that started before the window may still cover it.
	st.Runs, err = s.Runs(ctx, orgID, ep, from.Add(-HourlyWindow))
	if err != nil {
		return st, err
	}
	sort.Slice(st.Runs, func(i, j int) bool { return st.Runs[i].StartedAt.After(st.Runs[j].StartedAt) })
	for i, r := range st.Runs {
		if r.Abandoned(now) {
			// Its process died; no sweep recorded it yet.
			st.Runs[i].Outcome = OutcomeAbandoned
		}
	}
	var covered []Range
	for _, r := range st.Runs {
		if r.Outcome == OutcomeSuccess && r.Granularity == GranularityHourly {
			covered = append(covered, Range{From: r.WindowFrom, To: r.WindowTo})
		}
	}
	st.Gaps = Gaps(covered, from, to)
	return st, nil
}
