package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// Neon's lookback per granularity, measured back from the server's clock.
const (
	DailyWindow   = 60 * 24 * time.Hour
	MonthlyWindow = 365 * 24 * time.Hour
)

// Segment is one part of a backfill at one granularity.
type Segment struct {
	Granularity Granularity
	From, To    time.Time
}

// PlanBackfill splits [from, to) into the finest granularities Neon still serves: hourly for
// the last 167 hours, daily for the last 60 days, monthly for the last year. Segments meet on
// day and month boundaries, so no hour is covered twice and none is skipped: hourly starts at
// the first midnight inside the hourly window, daily at the first month start inside the daily
// window. Coarse segments are rounded outward to whole buckets. Parts older than a year cannot be
// backfilled and are an error.
func PlanBackfill(from, to, now time.Time) ([]Segment, error) {
	from, to, now = from.UTC(), to.UTC(), now.UTC()
	lastHour := now.Truncate(time.Hour)
	if to.After(lastHour) {
		to = lastHour
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("empty backfill window [%s, %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	hourlyEarliest := lastHour.Add(-(HourlyWindow - time.Hour))
	if !from.Before(hourlyEarliest) {
		return []Segment{{GranularityHourly, from.Truncate(time.Hour), to}}, nil
	}
	hourlyStart := ceilDay(hourlyEarliest)
	dailyStart := ceilMonth(startOfDay(now).Add(-(DailyWindow - 24*time.Hour)))
	monthlyStart := ceilMonth(startOfDay(now).Add(-MonthlyWindow))
	if from.Before(monthlyStart) {
		return nil, fmt.Errorf("backfill start %s is older than Neon's one year of monthly history (earliest %s)",
			from.Format(time.RFC3339), monthlyStart.Format(time.RFC3339))
	}
	var segs []Segment
	if from.Before(dailyStart) {
		segs = append(segs, Segment{GranularityMonthly, startOfMonth(from), minTime(ceilMonth(to), dailyStart)})
	}
	if from.Before(hourlyStart) && to.After(dailyStart) {
		segs = append(segs, Segment{GranularityDaily, maxTime(startOfDay(from), dailyStart), minTime(ceilDay(to), hourlyStart)})
	}
	if to.After(hourlyStart) {
		segs = append(segs, Segment{GranularityHourly, maxTime(from.Truncate(time.Hour), hourlyStart), to})
	}
	return segs, nil
}

func startOfDay(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }

func ceilDay(t time.Time) time.Time {
	d := startOfDay(t)
	if d.Equal(t) {
		return d
	}
	return d.Add(24 * time.Hour)
}

func startOfMonth(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func ceilMonth(t time.Time) time.Time {
	m := startOfMonth(t)
	if m.Equal(t) {
		return m
	}
	return m.AddDate(0, 1, 0)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// BackfillSummary reports a backfill: one summary per segment.
type BackfillSummary struct {
	Segments []SegmentSummary
}

// SegmentSummary reports one segment of a backfill.
type SegmentSummary struct {
	Segment
	Summary Summary
}

// Backfill collects [from, to) at the finest granularity Neon still serves for each part.
// Hourly parts are ordinary sweeps; daily and monthly parts go to the coarse store, diffed the
// same way so a re-run writes nothing.
func (c *Collector) Backfill(ctx context.Context, from, to time.Time, coarse CoarseStore) (BackfillSummary, error) {
	var out BackfillSummary
	segs, err := PlanBackfill(from, to, c.cfg.Now())
	if err != nil {
		return out, err
	}
	for _, seg := range segs {
		var sum Summary
		if seg.Granularity == GranularityHourly {
			sum, err = c.sweep(ctx, Window{From: seg.From, To: seg.To}, runKindBackfill)
		} else {
			sum, err = c.coarseSweep(ctx, seg, coarse)
		}
		out.Segments = append(out.Segments, SegmentSummary{Segment: seg, Summary: sum})
		if err != nil {
			return out, fmt.Errorf("%s segment [%s, %s): %w", seg.Granularity, seg.From.Format(time.RFC3339), seg.To.Format(time.RFC3339), err)
		}
	}
	return out, nil
}

// coarseSweep collects a daily or monthly segment and records it as a run. Coarse windows are
// closed, so there is no watermark to advance.
func (c *Collector) coarseSweep(ctx context.Context, seg Segment, store CoarseStore) (Summary, error) {
	work, cancel := context.WithTimeoutCause(ctx, c.cfg.Deadline, errDeadline)
	defer cancel()
	s, err := c.startRun(work, runKindBackfill, c.cfg.Now(), seg.Granularity, seg.From, seg.To)
	if err != nil {
		return s.sum, c.explain(ctx, work, s, err)
	}
	// Coarse buckets are long past: nothing in them is provisional.
	s.diff.ProvisionalFrom = seg.To
	err = c.explain(ctx, work, s, c.coarsePages(work, s, seg, store))
	c.measure(s)
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err = c.finishRun(recCtx, s, err)
	return s.sum, err
}

// coarsePages takes every page of the segment through the steps of coarsePage, one page at a
// time: coarse segments are small next to an hourly sweep.
func (c *Collector) coarsePages(ctx context.Context, s *sweepRun, seg Segment, store CoarseStore) error {
	for page, err := range c.pages(ctx, seg.Granularity, seg.From, seg.To) {
		if err != nil {
			return fmt.Errorf("fetch page %d: %w", s.sum.Pages+1, err)
		}
		if err := c.coarsePage(ctx, s, seg, store, page); err != nil {
			return err
		}
	}
	return nil
}

// coarsePage flattens a fetched page, loads its stored coarse facts, diffs the two and writes
// the changes. Revisions of coarse facts are counted, not logged.
func (c *Collector) coarsePage(ctx context.Context, s *sweepRun, seg Segment, store CoarseStore, page *neon.ConsumptionPage) error {
	g, err := FlattenPage(c.cfg.OrgID, page, c.cfg.MetricNames, Buckets(seg.Granularity, seg.From, seg.To))
	if err == nil {
		err = CheckBounds(g, c.cfg.Bounds, seg.Granularity)
	}
	if err != nil {
		return fmt.Errorf("page %d: %w", s.sum.Pages+1, err)
	}
	if err := store.LoadStoredCoarse(ctx, g, seg.Granularity, seg.From, seg.To); err != nil {
		return fmt.Errorf("read stored %s facts: %w", seg.Granularity, err)
	}
	d := Diff(g, s.diff)
	facts := coarseFacts(seg.Granularity, d.Facts)
	if len(facts) > 0 {
		if err := store.InsertCoarseFacts(ctx, facts); err != nil {
			return fmt.Errorf("insert %s facts: %w", seg.Granularity, err)
		}
	}
	s.sum.RowsWritten += int64(len(facts))
	s.sum.Revisions += int64(len(d.Revisions))
	c.pageDone(s, g)
	return nil
}

// coarseFacts turns the diff's facts, whose Hour is the bucket start, into coarse facts.
func coarseFacts(g Granularity, facts []Fact) []CoarseFact {
	out := make([]CoarseFact, len(facts))
	for i, f := range facts {
		out[i] = CoarseFact{
			OrgID: f.OrgID, ProjectID: f.ProjectID, Metric: f.Metric, Granularity: g,
			BucketStart: f.Hour, BucketEnd: bucketEnd(g, f.Hour), Value: f.Value,
			PeriodID: f.PeriodID, PeriodPlan: f.PeriodPlan, CollectedAt: f.CollectedAt, Version: f.Version,
		}
	}
	return out
}

func bucketEnd(g Granularity, start time.Time) time.Time {
	if g == GranularityMonthly {
		return start.AddDate(0, 1, 0)
	}
	return start.Add(24 * time.Hour)
}
