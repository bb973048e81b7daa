package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/neonmeter/neonmeter/internal/logkey"
)

// Defaults of the completeness settings.
const (
	// DefaultMinProjectsRatio: a sweep seeing fewer than half the projects of the last
	// successful one is refused.
	DefaultMinProjectsRatio = 0.5
	// DefaultDeadline bounds a sweep; below the hourly schedule so a stuck sweep never holds
	// the next one back.
	DefaultDeadline = 45 * time.Minute
	// AbandonGrace is how long after its deadline a run still shown as running is taken as
	// abandoned: a live process records its outcome within recordTimeout of the deadline, and
	// this leaves room for clocks of different hosts to disagree.
	AbandonGrace = 5 * time.Minute
)

// ErrStopped marks a run its caller stopped (a shutdown) before it finished: recorded as
// stopped, not failed.
var ErrStopped = errors.New("collector: stopped before the sweep finished")

// errDeadline is the cause of a sweep's own timeout.
var errDeadline = errors.New("sweep deadline passed")

// CheckProjects decides whether a sweep that saw seen projects may count as complete, given
// the projects the last successful sweep of the feed saw (0 when none). Fewer than ratio of
// them, or none at all when there were some, means Neon left projects out: the sweep must not
// mark its hours covered. accept lets an operator confirm a real drop once.
func CheckProjects(orgID string, seen int, last Run, ratio float64, accept bool) error {
	had := int(last.Projects)
	if had == 0 || accept || seen >= had {
		return nil
	}
	what := fmt.Sprintf("Neon listed %d projects of org %s, the last successful sweep (%s, %s) saw %d", seen, orgID,
		last.RunID, last.StartedAt.UTC().Format(time.RFC3339), had)
	hint := "the sweep is not counted as complete and the watermark stays; if the projects are really gone, run collect --accept-project-drop once"
	if seen == 0 {
		return fmt.Errorf("%s: an empty answer is never complete; %s", what, hint)
	}
	if float64(seen) < ratio*float64(had) {
		return fmt.Errorf("%s, fewer than NEONMETER_COLLECT_MIN_PROJECTS_RATIO=%g of them; %s", what, ratio, hint)
	}
	return nil
}

// Abandoned reports whether a run still shown as running cannot be running any more: its
// deadline passed AbandonGrace ago. Rows written before runs carried a deadline use
// DefaultDeadline from their start.
func (r Run) Abandoned(now time.Time) bool {
	return r.Outcome == OutcomeRunning && now.After(r.deadline().Add(AbandonGrace))
}

func (r Run) deadline() time.Time {
	if r.DeadlineAt.IsZero() {
		return r.StartedAt.Add(DefaultDeadline)
	}
	return r.DeadlineAt
}

// closeAbandoned records every abandoned run of the org and endpoint as such, so each shows as
// abandoned everywhere (status, dashboards reading collection_runs, the runs metric). A run
// that was only slow and records its outcome later still wins: its row is newer.
func (c *Collector) closeAbandoned(ctx context.Context, now time.Time) (int, error) {
	return closeAbandonedRuns(ctx, c.cfg.Store, c.cfg.OrgID, c.cfg.Endpoint, now, c.log)
}

// closeAbandonedRuns is closeAbandoned for any org and endpoint, sweeps' and cycles' runs alike.
func closeAbandonedRuns(ctx context.Context, store Store, orgID string, ep Endpoint, now time.Time, log *slog.Logger) (int, error) {
	runs, err := store.Runs(ctx, orgID, ep, now.Add(-30*24*time.Hour))
	if err != nil {
		return 0, fmt.Errorf("list runs: %w", err)
	}
	n := 0
	for _, r := range runs {
		if !r.Abandoned(now) {
			continue
		}
		r.Outcome, r.FinishedAt, r.Errors = OutcomeAbandoned, now, r.Errors+1
		r.Error = fmt.Sprintf("abandoned: process %d on host %q did not record an outcome by its deadline %s", r.PID, r.Host, r.deadline().UTC().Format(time.RFC3339))
		if !r.FinishedAt.After(r.StartedAt) {
			r.FinishedAt = r.StartedAt.Add(time.Second)
		}
		if err := store.WriteRun(ctx, r); err != nil {
			return n, fmt.Errorf("record abandoned run %s: %w", r.RunID, err)
		}
		log.Warn("a dead process left a run unfinished; recorded as abandoned", logkey.RunID, r.RunID, logkey.Host, r.Host, logkey.PID, r.PID)
		n++
	}
	return n, nil
}
