package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/schema"
)

// Neon's lookback per granularity, measured back from the server's clock.
const (
	DailyWindow   = 60 * 24 * time.Hour
	MonthlyWindow = 365 * 24 * time.Hour
)

// Segment is one part of a backfill at one granularity.
type Segment struct {
	Granularity neon.Granularity
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
		return []Segment{{neon.GranularityHourly, from.Truncate(time.Hour), to}}, nil
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
		segs = append(segs, Segment{neon.GranularityMonthly, startOfMonth(from), minTime(ceilMonth(to), dailyStart)})
	}
	if from.Before(hourlyStart) && to.After(dailyStart) {
		segs = append(segs, Segment{neon.GranularityDaily, maxTime(startOfDay(from), dailyStart), minTime(ceilDay(to), hourlyStart)})
	}
	if to.After(hourlyStart) {
		segs = append(segs, Segment{neon.GranularityHourly, maxTime(from.Truncate(time.Hour), hourlyStart), to})
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

// CoarseStore is where daily and monthly facts go, apart from hourly ones.
type CoarseStore interface {
	LoadStoredCoarse(ctx context.Context, g *Grid, granularity string, from, to time.Time) error
	InsertCoarseFacts(ctx context.Context, facts []schema.CoarseFact) error
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
// Hourly parts are ordinary sweeps; daily and monthly parts go to the coarse table, diffed the
// same way so a re-run writes nothing.
func (c *Collector) Backfill(ctx context.Context, from, to time.Time, coarse CoarseStore) (BackfillSummary, error) {
	var out BackfillSummary
	segs, err := PlanBackfill(from, to, c.cfg.Now())
	if err != nil {
		return out, err
	}
	for _, seg := range segs {
		var sum Summary
		if seg.Granularity == neon.GranularityHourly {
			sum, err = c.Sweep(ctx, Window{From: seg.From, To: seg.To})
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

func (c *Collector) coarseSweep(ctx context.Context, seg Segment, store CoarseStore) (Summary, error) {
	start := c.cfg.Now()
	wallStart := time.Now()
	sum := Summary{RunID: newRunID(), OrgID: c.cfg.OrgID, Endpoint: c.cfg.Endpoint, From: seg.From, To: seg.To}
	run := schema.Run{
		RunID: sum.RunID, OrgID: c.cfg.OrgID, Endpoint: string(c.cfg.Endpoint), Granularity: string(seg.Granularity),
		WindowFrom: seg.From, WindowTo: seg.To, StartedAt: start, Outcome: schema.OutcomeRunning,
	}
	if err := c.cfg.Store.WriteRun(ctx, run); err != nil {
		return sum, fmt.Errorf("record run start: %w", err)
	}
	before := c.cfg.Source.Stats()
	q := neon.ConsumptionQuery{
		OrgID: c.cfg.OrgID, From: seg.From, To: seg.To, Granularity: seg.Granularity,
		Metrics: c.cfg.MetricNames, Limit: c.cfg.PageSize,
	}
	pages := c.cfg.Source.ConsumptionV2(ctx, q)
	if c.cfg.Endpoint == EndpointLegacy {
		pages = c.cfg.Source.ConsumptionLegacy(ctx, q)
	}
	version := uint64(time.Now().UnixNano())
	var sweepErr error
	for page, err := range pages {
		if err != nil {
			sweepErr = fmt.Errorf("fetch page %d: %w", sum.Pages+1, err)
			break
		}
		g, err := FlattenPage(c.cfg.OrgID, page, c.cfg.MetricNames, Buckets(seg.Granularity, seg.From, seg.To))
		if err != nil {
			sweepErr = fmt.Errorf("page %d: %w", sum.Pages+1, err)
			break
		}
		if err := store.LoadStoredCoarse(ctx, g, string(seg.Granularity), seg.From, seg.To); err != nil {
			sweepErr = fmt.Errorf("read stored %s facts: %w", seg.Granularity, err)
			break
		}
		// Coarse buckets are long past: nothing in them is provisional.
		d := Diff(g, DiffOptions{ProvisionalFrom: seg.To, Version: version, CollectedAt: start, RunID: sum.RunID})
		facts := make([]schema.CoarseFact, len(d.Facts))
		for i, f := range d.Facts {
			facts[i] = schema.CoarseFact{
				OrgID: f.OrgID, ProjectID: f.ProjectID, Metric: f.Metric, Granularity: string(seg.Granularity),
				BucketStart: f.Hour, BucketEnd: bucketEnd(seg.Granularity, f.Hour), Value: f.Value,
				PeriodID: f.PeriodID, PeriodPlan: f.PeriodPlan, CollectedAt: f.CollectedAt, Version: f.Version,
			}
		}
		if len(facts) > 0 {
			if err := store.InsertCoarseFacts(ctx, facts); err != nil {
				sweepErr = fmt.Errorf("insert %s facts: %w", seg.Granularity, err)
				break
			}
		}
		sum.Pages++
		sum.Projects += len(g.Projects)
		sum.ValuesFetched += int64(g.Values)
		sum.RowsWritten += int64(len(facts))
		sum.Revisions += int64(len(d.Revisions))
		if c.cfg.Progress != nil {
			c.cfg.Progress(Progress{Pages: sum.Pages, Values: sum.ValuesFetched, Elapsed: time.Since(wallStart)})
		}
	}
	after := c.cfg.Source.Stats()
	sum.APIRequests, sum.Retries = after.Requests-before.Requests, after.Retries-before.Retries
	sum.Duration = time.Since(wallStart)
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	sweepErr = c.finishRun(recCtx, run, &sum, sweepErr)
	return sum, sweepErr
}

func bucketEnd(g neon.Granularity, start time.Time) time.Time {
	if g == neon.GranularityMonthly {
		return start.AddDate(0, 1, 0)
	}
	return start.Add(24 * time.Hour)
}
