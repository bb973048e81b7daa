package billing_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/robfig/cron/v3"
	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/billing"
)

// TestDueReconciles: nightly when the schedule fired since the last run (or never ran), and once
// per period in the last Lead before its invoice grace ends, over that whole period.
func TestDueReconciles(t *testing.T) {
	nightly, err := cron.ParseStandard("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	s := billing.ReconcileSchedule{Nightly: nightly, Lead: time.Hour}
	nov1, dec1 := at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")
	cases := []struct {
		name  string
		now   string
		last  map[billing.ReconcileTrigger]time.Time
		grace time.Duration
		want  []billing.DueReconcile
	}{
		{"never ran", "2026-11-27T12:20:00Z", nil, time.Hour,
			[]billing.DueReconcile{{Trigger: billing.TriggerSchedule, From: nov1, To: at("2026-11-27T12:20:00Z")}}},
		{"ran last night", "2026-11-27T12:20:00Z", map[billing.ReconcileTrigger]time.Time{billing.TriggerSchedule: at("2026-11-27T02:30:05Z")}, time.Hour, nil},
		{"schedule fired", "2026-11-28T02:31:00Z", map[billing.ReconcileTrigger]time.Time{billing.TriggerSchedule: at("2026-11-27T02:30:05Z")}, time.Hour,
			[]billing.DueReconcile{{Trigger: billing.TriggerSchedule, From: nov1, To: at("2026-11-28T02:31:00Z")}}},
		{"a command-line run does not count", "2026-11-28T02:31:00Z", map[billing.ReconcileTrigger]time.Time{
			billing.TriggerSchedule: at("2026-11-27T02:30:05Z"), billing.TriggerCLI: at("2026-11-28T02:00:00Z")}, time.Hour,
			[]billing.DueReconcile{{Trigger: billing.TriggerSchedule, From: nov1, To: at("2026-11-28T02:31:00Z")}}},
		{"in the grace, 1 h", "2026-12-01T00:20:00Z", map[billing.ReconcileTrigger]time.Time{billing.TriggerSchedule: at("2026-11-30T02:30:00Z")}, time.Hour,
			[]billing.DueReconcile{{Trigger: billing.TriggerGrace, From: nov1, To: dec1}}},
		{"grace run done", "2026-12-01T00:50:00Z", map[billing.ReconcileTrigger]time.Time{
			billing.TriggerSchedule: at("2026-11-30T02:30:00Z"), billing.TriggerGrace: at("2026-12-01T00:20:00Z")}, time.Hour, nil},
		{"early in a long grace", "2026-12-01T05:20:00Z", map[billing.ReconcileTrigger]time.Time{billing.TriggerSchedule: at("2026-12-01T02:30:00Z")}, 24 * time.Hour, nil},
		{"last hour of a long grace", "2026-12-01T23:20:00Z", map[billing.ReconcileTrigger]time.Time{
			billing.TriggerSchedule: at("2026-12-01T02:30:00Z"), billing.TriggerGrace: at("2026-11-01T23:20:00Z")}, 24 * time.Hour,
			[]billing.DueReconcile{{Trigger: billing.TriggerGrace, From: nov1, To: dec1}}},
		{"grace over", "2026-12-02T00:20:00Z", map[billing.ReconcileTrigger]time.Time{billing.TriggerSchedule: at("2026-12-01T02:30:00Z")}, 24 * time.Hour, nil},
	}
	for _, tc := range cases {
		got := billing.DueReconciles(at(tc.now), tc.last, s, tc.grace)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReconcileScheduled_NightlyAndBeforeGrace runs serve's reconcile step on the real chain as
// the clock moves: the first cycle reconciles (none on record), the next ones only export the
// recorded result, the next night runs again, and the cycle in the grace after November's end
// reconciles all of November before its invoice is final.
func TestReconcileScheduled_NightlyAndBeforeGrace(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	nightly, err := cron.ParseStandard("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	s := billing.ReconcileSchedule{Nightly: nightly, Lead: time.Hour}
	m, _ := newMetrics(t)
	p := w.pusher(t, m, nil)
	step := func(now time.Time, want ...billing.ReconcileTrigger) {
		t.Helper()
		w.Clock.Set(now)
		push(t, p)
		runs, err := p.ReconcileScheduled(ctx, s)
		if err != nil {
			t.Fatalf("%s: %v", now.Format(time.RFC3339), err)
		}
		var got []billing.ReconcileTrigger
		for _, r := range runs {
			got = append(got, r.Trigger)
			if len(r.Drift) != 0 || r.Compared == 0 {
				t.Fatalf("%s: %s compared %d buckets, drift %v", now.Format(time.RFC3339), r.Trigger, r.Compared, r.Drift)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: ran %v, want %v", now.Format(time.RFC3339), got, want)
		}
		if last := testutil.ToFloat64(m.ReconcileLast); last == 0 {
			t.Fatalf("%s: %s not exported", now.Format(time.RFC3339), billing.MetricReconcileLast)
		}
	}
	step(testNow, billing.TriggerSchedule)
	step(testNow.Add(time.Hour))
	step(time.Date(2026, 11, 28, 2, 35, 0, 0, time.UTC), billing.TriggerSchedule)
	step(time.Date(2026, 11, 28, 3, 35, 0, 0, time.UTC))
	step(time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC), billing.TriggerGrace, billing.TriggerSchedule)
	step(time.Date(2026, 12, 1, 1, 20, 0, 0, time.UTC))
	last, err := w.store.LastReconciles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !last[billing.TriggerGrace].Equal(time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC)) {
		t.Fatalf("last reconciles %v", last)
	}
	if got := testutil.ToFloat64(m.ReconcileRuns.WithLabelValues(string(billing.TriggerGrace), billing.ResultSuccess)); got != 1 {
		t.Fatalf("grace runs counted %v, want 1", got)
	}
}

// TestReconcile_DriftAlertFires: after a push, another writer replaces one customer's hour of a
// meter in Stripe. A command-line reconcile records the drift (rows and run) and exports the
// gauges; the scraped exposition carries the series and labels NeonmeterBillingDrift reads, and
// promtool fires the alert from exactly those series. A fresh process exports the same gauges
// from the recorded rows.
func TestReconcile_DriftAlertFires(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	m, reg := newMetrics(t)
	p := w.pusher(t, m, nil)
	push(t, p)
	from, to := window()
	w.rogueDrift(t, from, to, 5)
	rec, err := p.Reconcile(ctx, from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Drift) != 1 || rec.Drift[0].Drift() != 5 || rec.Trigger != billing.TriggerCLI {
		t.Fatalf("reconcile found %+v (trigger %s), want one bucket off by 5", rec.Drift, rec.Trigger)
	}
	run, drift, ok, err := w.store.LatestReconcile(ctx)
	if err != nil || !ok || run.RunID != rec.RunID || run.Drifting != 1 || len(drift) != 1 || drift[0].Units != 5 || drift[0].Target != "neon_compute" {
		t.Fatalf("recorded run %+v drift %+v ok %v err %v", run, drift, ok, err)
	}

	series := scrapeSeries(t, reg, billing.MetricDriftUnits)
	want := `neonmeter_billing_drift_units{sink="meter",target="neon_compute"} 5`
	if !slices.Contains(series, want) || !slices.Contains(series, `neonmeter_billing_drift_units{sink="meter",target="neon_transfer"} 0`) {
		t.Fatalf("exposition lacks %s (and a 0 for the other meters):\n%s", want, strings.Join(series, "\n"))
	}
	alertFiresOn(t, series, "neon_compute", "meter", "5")

	m2, reg2 := newMetrics(t)
	if err := w.pusher(t, m2, nil).ExportLastReconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := scrapeSeries(t, reg2, billing.MetricDriftUnits); strings.Join(got, "\n") != strings.Join(series, "\n") {
		t.Fatalf("a fresh process exports\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(series, "\n"))
	}
}

// TestReconcile_LeavesOutUnsettledHours: Stripe summarises meter events asynchronously, so a
// reconcile right after a push leaves out the hours just pushed instead of reporting them as
// drift; once they have settled a real drift among them is reported.
func TestReconcile_LeavesOutUnsettledHours(t *testing.T) {
	w := newWorld(t, 200)
	ctx := context.Background()
	p := w.pusher(t, nil, func(c *billing.Config) { c.SummarySettle = 0 }) // the default, 15 min
	push(t, p)
	from, to := window()
	w.rogueDrift(t, from, to, 7)
	rec, err := p.Reconcile(ctx, from, to, false)
	if err != nil || len(rec.Drift) != 0 || rec.Unsettled == 0 {
		t.Fatalf("right after the push: drift %v, %d unsettled, err %v; want none and some", rec.Drift, rec.Unsettled, err)
	}
	w.Clock.Set(testNow.Add(16 * time.Minute))
	rec, err = p.Reconcile(ctx, from, to, false)
	if err != nil || len(rec.Drift) != 1 || rec.Unsettled != 0 || rec.Drift[0].Drift() != 7 {
		t.Fatalf("16 min later: drift %v, %d unsettled, err %v; want one bucket off by 7", rec.Drift, rec.Unsettled, err)
	}
}

// rogueDrift makes another writer replace, in Stripe, the first pushed hour of neon_compute in
// [from, to) with its value plus by.
func (w *world) rogueDrift(t testing.TB, from, to time.Time, by int64) {
	t.Helper()
	truth := w.truth(from, to)
	for _, c := range sortedCells(truth) {
		if c.Target != "neon_compute" {
			continue
		}
		if _, err := w.stripe.Client.BillingMeterEvents.New(&stripe.BillingMeterEventParams{EventName: stripe.String(c.Target), Identifier: stripe.String("rogue-" + c.Customer),
			Payload: map[string]string{"stripe_customer_id": c.Customer, "value": fmt.Sprint(truth[c] + by)}, Timestamp: stripe.Int64(c.Hour.Unix())}); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no neon_compute value in the truth")
}

func sortedCells(m map[cell]int64) []cell {
	out := make([]cell, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortCells(out)
	return out
}

// scrapeSeries scrapes reg over HTTP and returns the sample lines of metric, sorted.
func scrapeSeries(t testing.TB, reg *prometheus.Registry, metric string) []string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), metric+"{") || strings.HasPrefix(sc.Text(), metric+" ") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// alertFiresOn runs the repository's alert rules under promtool with the scraped lines as input
// series held for 30 minutes, and expects NeonmeterBillingDrift to fire for exactly target.
func alertFiresOn(t testing.TB, lines []string, target, sink, units string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is required (Debian package prometheus): %v", err)
	}
	rules, err := filepath.Abs(filepath.Join("..", "deploy", "prometheus", "neonmeter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, l := range lines {
		i := strings.LastIndex(l, " ")
		fmt.Fprintf(&in, "      - series: '%s'\n        values: '%sx30'\n", l[:i], l[i+1:])
	}
	test := fmt.Sprintf(`rule_files:
  - %s
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    alert_rule_test:
      - eval_time: 20m
        alertname: NeonmeterBillingDrift
        exp_alerts:
          - exp_labels: {severity: ticket, sink: %s, target: %s}
            exp_annotations:
              summary: "Stripe and ClickHouse disagree on %s (%s) by %s units at the last reconcile"
              runbook: "docs/enforcement.md#neonmeterbillingdrift"
`, rules, in.String(), sink, target, target, sink, units)
	file := filepath.Join(t.TempDir(), "drift_test.yml")
	if err := os.WriteFile(file, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules on the scraped series: %v\n%s\n%s", err, out, test)
	}
}

func sortCells(cs []cell) {
	slices.SortFunc(cs, func(a, b cell) int {
		return cmp.Or(cmp.Compare(a.Customer, b.Customer), cmp.Compare(a.Target, b.Target), a.Hour.Compare(b.Hour))
	})
}
