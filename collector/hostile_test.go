package collector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/metric/metrictest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// hostile is a fleet whose answers pass through edit while it is set: a Neon that misbehaves.
type hostile struct {
	*fleet
	edit atomic.Pointer[func(r *http.Request, body []byte) []byte]
}

func newHostileFleet(t *testing.T, projects int) *hostile {
	t.Helper()
	h := &hostile{}
	wrap := testfleet.Rewrite(func(r *http.Request, status int, body []byte) (int, []byte) {
		if e := h.edit.Load(); e != nil && strings.Contains(r.URL.Path, "/consumption_history/") {
			return http.StatusOK, (*e)(r, body)
		}
		return status, body
	})
	h.fleet = &fleet{testfleet.New(t, testfleet.Options{Projects: projects, Wrap: wrap})}
	return h
}

func (h *hostile) misbehave(edit func(r *http.Request, body []byte) []byte) { h.edit.Store(&edit) }
func (h *hostile) behave()                                                  { h.edit.Store(nil) }

// collectorWith is f.collector with edit applied to its configuration.
func (f *fleet) collectorWith(t *testing.T, org sim.Org, edit func(*collector.Config)) *collector.Collector {
	t.Helper()
	cfg := collector.Config{
		Consumption: f.Client, Store: f.store(), OrgID: org.ID, Endpoint: collector.EndpointV2,
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now,
	}
	edit(&cfg)
	c, err := collector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lastRun returns the org's newest run row.
func (f *fleet) lastRun(t *testing.T, orgID string) collector.Run {
	t.Helper()
	runs, err := f.store().Runs(context.Background(), orgID, collector.EndpointV2, time.Time{})
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs: %d, %v", len(runs), err)
	}
	return runs[len(runs)-1]
}

// watermark returns the org's hourly watermark (zero when none).
func (f *fleet) watermark(t *testing.T, orgID string) time.Time {
	t.Helper()
	wm, _, err := f.store().Watermark(context.Background(), collector.Feed{OrgID: orgID, Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly})
	if err != nil {
		t.Fatal(err)
	}
	return wm
}

// assertNoWatermark fails the test when the org's hourly v2 watermark is set: a failed or
// stopped sweep must not move it.
func (f *fleet) assertNoWatermark(t *testing.T, orgID string) {
	t.Helper()
	if wm := f.watermark(t, orgID); !wm.IsZero() {
		t.Errorf("the watermark moved to %v", wm)
	}
}

// storedRows counts the org's rows in usage_facts.
func (f *fleet) storedRows(t *testing.T, orgID string) uint64 {
	t.Helper()
	var n uint64
	if err := f.Conn.QueryRow(context.Background(), "SELECT count() FROM "+f.DB+".usage_facts WHERE org_id = ?", orgID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSweep_Int64MaxValueRefusedNothingStored is the int64-overflow scenario end to end: the
// simulator's answer carries one value of 9,223,372,036,854,775,000 (it used to be stored and
// wrap sum(value) downstream). The collector refuses the page naming project, metric and hour,
// stores nothing of it, records the run as failed with that error and leaves the watermark; once
// Neon answers sanely, a re-run is exact.
func TestSweep_Int64MaxValueRefusedNothingStored(t *testing.T) {
	h := newHostileFleet(t, 200) // 80 scale projects: one page
	org := h.Org(t, "scale")
	victim := org.ProjectIDs[3]
	value := regexp.MustCompile(`"value":\d+`)
	h.misbehave(func(r *http.Request, body []byte) []byte {
		i := bytes.Index(body, []byte(`"project_id":"`+victim+`"`))
		loc := value.FindIndex(body[i:])
		return append(append(append([]byte{}, body[:i+loc[0]]...), `"value":9223372036854775000`...), body[i+loc[1]:]...)
	})
	c := h.collector(t, org)
	w := h.window72h()
	_, err := c.Sweep(context.Background(), w)
	want := regexp.MustCompile(`project ` + victim + ` metric [a-z_]+ hour 20\d\d-\d\d-\d\dT\d\d:00:00Z: value 9223372036854775000 is above \d+.*NEONMETER_COLLECT_VALUE_BOUNDS`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("sweep error %v; want one matching %s", err, want)
	}
	if n := h.storedRows(t, org.ID); n != 0 {
		t.Errorf("%d rows stored from a refused answer", n)
	}
	h.assertNoWatermark(t, org.ID)
	if r := h.lastRun(t, org.ID); r.Outcome != collector.OutcomeFailed || !strings.Contains(r.Error, "9223372036854775000") {
		t.Errorf("run row %s %q; want failed with the error", r.Outcome, r.Error)
	}
	h.behave()
	if _, err := c.Sweep(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	h.assertExact(t, org, w, neon.V2Metrics())
}

// TestSweep_PeriodPlanOfAMegabyteRefused: an answer whose period_plan is 1 MB (it used to be
// copied onto every stored row: 767 MB for a 1 MB answer) is refused as a bad response after the
// client's retries, nothing stored.
func TestSweep_PeriodPlanOfAMegabyteRefused(t *testing.T) {
	h := newHostileFleet(t, 200)
	org := h.Org(t, "scale")
	huge := []byte(`"period_plan":"` + strings.Repeat("x", 1<<20) + `"`)
	plan := regexp.MustCompile(`"period_plan":"[a-z]+"`)
	h.misbehave(func(r *http.Request, body []byte) []byte {
		loc := plan.FindIndex(body) // one period of one project: a 1 MB answer
		return append(append(append([]byte{}, body[:loc[0]]...), huge...), body[loc[1]:]...)
	})
	_, err := h.collector(t, org).Sweep(context.Background(), h.window72h())
	if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), "period_plan") {
		t.Fatalf("sweep error %v; want a bad response naming period_plan", err)
	}
	if n := h.storedRows(t, org.ID); n != 0 {
		t.Errorf("%d rows stored", n)
	}
}

// TestSweep_ProjectsVanishFailsLoudly: an answer of {"projects": []} for an org whose last sweep
// saw every project used to count as a successful sweep, advance the watermark and make status
// report the hours covered. Now it fails naming the drop, the watermark stays and status shows
// the hours as a gap; so does a drop below the ratio; an operator can accept a real drop.
func TestSweep_ProjectsVanishFailsLoudly(t *testing.T) {
	h := newHostileFleet(t, 600) // 240 scale projects: three pages
	org := h.Org(t, "scale")
	ctx := context.Background()
	c := h.collector(t, org)
	first, err := c.Sweep(ctx, collector.Window{})
	if err != nil || first.Projects != len(org.ProjectIDs) {
		t.Fatalf("first sweep: %d projects, %v", first.Projects, err)
	}
	wm := h.watermark(t, org.ID)
	h.Clock.Add(3 * time.Hour)

	cases := []struct {
		name string
		edit func(r *http.Request, body []byte) []byte
		want string
	}{
		{"empty answer", func(*http.Request, []byte) []byte { return []byte(`{"projects": []}`) },
			fmt.Sprintf("Neon listed 0 projects of org %s, the last successful sweep (%s", org.ID, first.RunID)},
		{"first page only", func(_ *http.Request, body []byte) []byte {
			return regexp.MustCompile(`,"pagination":\{"cursor":"[^"]*"\}`).ReplaceAll(body, nil)
		}, "Neon listed 100 projects"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.misbehave(tc.edit)
			sum, err := c.Sweep(ctx, collector.Window{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "watermark stays") {
				t.Fatalf("sweep error %v; want %q", err, tc.want)
			}
			if sum.Outcome != collector.OutcomeFailed || h.lastRun(t, org.ID).Outcome != collector.OutcomeFailed {
				t.Errorf("outcome %s; want failed", sum.Outcome)
			}
			if got := h.watermark(t, org.ID); !got.Equal(wm) {
				t.Errorf("the watermark moved from %v to %v", wm, got)
			}
			st, err := collector.ReadStatus(ctx, h.store(), org.ID, collector.EndpointV2, h.Clock.Now(), 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Gaps) != 1 || !st.Gaps[0].From.Equal(wm) || st.Gaps[0].Hours() != 3 {
				t.Errorf("status gaps %+v; want the 3 hours after %v", st.Gaps, wm)
			}
		})
	}
	accepting := h.collectorWith(t, org, func(cfg *collector.Config) { cfg.AcceptProjectDrop = true })
	if sum, err := accepting.Sweep(ctx, collector.Window{}); err != nil || sum.Projects != 100 {
		t.Fatalf("an accepted drop: %d projects, %v", sum.Projects, err)
	}
	h.behave()
	if _, err := c.Sweep(ctx, collector.Window{}); err != nil {
		t.Fatalf("growing back: %v", err)
	}
}

// endless answers every consumption request with a full page of projects never seen before and
// a fresh cursor, after a pause: a cursor that never ends.
func endless(pause time.Duration) func(r *http.Request, _ []byte) []byte {
	return func(r *http.Request, _ []byte) []byte {
		time.Sleep(pause)
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("cursor"), "c"))
		var b strings.Builder
		b.WriteString(`{"projects":[`)
		for i := range 100 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"project_id":"endless-%d","periods":[]}`, n+i)
		}
		fmt.Fprintf(&b, `],"pagination":{"cursor":"c%d"}}`, n+100)
		return []byte(b.String())
	}
}

// TestSweep_EndlessCursorStoppedByDeadline: a cursor that never ends used to run for 100,000
// pages (~55 h at the default rate). The sweep's deadline stops it, and so does the page cap;
// either way the run fails naming why and the watermark stays.
func TestSweep_EndlessCursorStoppedByDeadline(t *testing.T) {
	h := newHostileFleet(t, 200)
	org := h.Org(t, "scale")
	h.misbehave(endless(5 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := h.collectorWith(t, org, func(cfg *collector.Config) { cfg.Deadline = 1500 * time.Millisecond })
	start := time.Now()
	sum, err := c.Sweep(ctx, h.window72h())
	if err == nil || !strings.Contains(err.Error(), "sweep deadline of 1.5s (NEONMETER_COLLECT_DEADLINE) passed") {
		t.Fatalf("sweep error %v; want the deadline", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the sweep took %v past a 1.5 s deadline", took)
	}
	r := h.lastRun(t, org.ID)
	if sum.Outcome != collector.OutcomeFailed || r.Outcome != collector.OutcomeFailed || !strings.Contains(r.Error, "NEONMETER_COLLECT_DEADLINE") {
		t.Errorf("run %s %q; want failed naming the deadline", r.Outcome, r.Error)
	}
	// Both are stored to the second.
	if d := r.DeadlineAt.Sub(r.StartedAt); d < time.Second || d > 2*time.Second {
		t.Errorf("run deadline %v, started %v: want 1.5 s later", r.DeadlineAt, r.StartedAt)
	}

	capped := h.collectorWith(t, org, func(cfg *collector.Config) { cfg.MaxPages = 30 })
	if _, err := capped.Sweep(ctx, h.window72h()); err == nil || !strings.Contains(err.Error(), "more than 30 pages") {
		t.Fatalf("sweep error %v; want the page cap", err)
	}
	h.assertNoWatermark(t, org.ID)
}

// TestSweep_StoppedByCallerIsNotAFailure: a sweep whose caller stops it (a shutdown) records
// the run as stopped, counts it as stopped rather than failed, keeps the watermark, and its error
// is ErrStopped. It used to be recorded and counted as a failure.
func TestSweep_StoppedByCallerIsNotAFailure(t *testing.T) {
	h := newHostileFleet(t, 600)
	org := h.Org(t, "scale")
	reg := prometheus.NewRegistry()
	m, err := collector.NewMetrics(reg, h.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	c := h.collectorWith(t, org, func(cfg *collector.Config) {
		cfg.Metrics = m
		cfg.Progress = func(p collector.Progress) {
			if p.Pages == 1 {
				cancel(errors.New("shutdown requested"))
			}
		}
	})
	sum, err := c.Sweep(ctx, h.window72h())
	if !errors.Is(err, collector.ErrStopped) || !strings.Contains(err.Error(), "shutdown requested") {
		t.Fatalf("sweep error %v; want ErrStopped with the cause", err)
	}
	r := h.lastRun(t, org.ID)
	if sum.Outcome != collector.OutcomeStopped || r.Outcome != collector.OutcomeStopped || r.Errors != 0 {
		t.Errorf("outcome %s, row %s with %d errors; want stopped, not a failure", sum.Outcome, r.Outcome, r.Errors)
	}
	if got := metrictest.Sum(t, reg, "neonmeter_collect_runs_total", map[string]string{"result": "stopped"}); got != 1 {
		t.Errorf("runs_total{result=stopped} = %v, want 1", got)
	}
	if got := metrictest.Sum(t, reg, "neonmeter_collect_runs_total", map[string]string{"result": "failure"}); got != 0 {
		t.Errorf("runs_total{result=failure} = %v, want 0", got)
	}
	h.assertNoWatermark(t, org.ID)
}

// TestSweep_KilledRunShownAbandoned: a sweep killed with SIGKILL used to show as running
// forever. Its row carries the process and a deadline: once the deadline and AbandonGrace have
// passed, status shows it abandoned, and the next sweep records it so (naming host and process)
// and counts it in runs_total{result="abandoned"}; before that it still shows as running.
func TestSweep_KilledRunShownAbandoned(t *testing.T) {
	f := newFleet(t, 600)
	org := f.Org(t, "scale")
	f.Sim.SetFaults(sim.Faults{SlowRate: 1, SlowDelay: 2 * time.Second, Seed: 5})
	child := crashtest.StartWith(t, sweepChild{URL: f.URL, DB: f.DB, Now: f.Clock.Now(), Org: org.ID})
	ctx := context.Background()
	var killed collector.Run
	for deadline := time.Now().Add(30 * time.Second); killed.RunID == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			child.Kill()
			t.Fatalf("the child never recorded its run\n%s", child.Output())
		}
		if runs, err := f.store().Runs(ctx, org.ID, collector.EndpointV2, time.Time{}); err == nil && len(runs) == 1 {
			killed = runs[0]
		}
	}
	child.Kill()
	f.Sim.SetFaults(sim.Faults{})
	host, _ := os.Hostname()
	if killed.Outcome != collector.OutcomeRunning || killed.Host != host || killed.PID == 0 || int(killed.PID) == os.Getpid() ||
		!killed.DeadlineAt.Equal(killed.StartedAt.Add(collector.DefaultDeadline)) {
		t.Fatalf("start row %+v: want running, on this host, the child's pid, deadline 45 min after the start", killed)
	}
	status := func() collector.Outcome {
		st, err := collector.ReadStatus(ctx, f.store(), org.ID, collector.EndpointV2, f.Clock.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st.Runs {
			if r.RunID == killed.RunID {
				return r.Outcome
			}
		}
		t.Fatalf("status lacks run %s", killed.RunID)
		return ""
	}
	f.Clock.Add(collector.DefaultDeadline)
	if got := status(); got != collector.OutcomeRunning {
		t.Errorf("at its deadline the run shows %s; it may still be recording its outcome", got)
	}
	f.Clock.Add(collector.AbandonGrace + time.Minute)
	if got := status(); got != collector.OutcomeAbandoned {
		t.Errorf("past its deadline and grace the run shows %s, want abandoned", got)
	}

	reg := prometheus.NewRegistry()
	m, err := collector.NewMetrics(reg, f.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	c := f.collectorWith(t, org, func(cfg *collector.Config) { cfg.Metrics = m })
	if _, err := c.Sweep(ctx, collector.Window{}); err != nil {
		t.Fatal(err)
	}
	runs, err := f.store().Runs(ctx, org.ID, collector.EndpointV2, time.Time{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	r := runs[0]
	if r.RunID != killed.RunID || r.Outcome != collector.OutcomeAbandoned || !strings.Contains(r.Error, fmt.Sprintf("process %d on host %q", killed.PID, host)) {
		t.Errorf("the killed run's row is %s %q; want abandoned naming its process", r.Outcome, r.Error)
	}
	if got := metrictest.Sum(t, reg, "neonmeter_collect_runs_total", map[string]string{"result": "abandoned"}); got != 1 {
		t.Errorf("runs_total{result=abandoned} = %v, want 1", got)
	}
	// Recorded once: the next sweep finds nothing more to close.
	if _, err := c.Sweep(ctx, collector.Window{}); err != nil {
		t.Fatal(err)
	}
	if got := metrictest.Sum(t, reg, "neonmeter_collect_runs_total", map[string]string{"result": "abandoned"}); got != 1 {
		t.Errorf("runs_total{result=abandoned} = %v after another sweep, want 1", got)
	}
}
