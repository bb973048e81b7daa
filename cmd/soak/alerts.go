package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// alertEvery is the simulated interval at which the alerts are evaluated for the table.
const alertEvery = time.Hour

// alertRules is what the run may and must fire: required alerts must fire at least once,
// forbidden ones never; the others depend on how a fault's timing fell (a Stripe outage long
// enough for the push-failing alert, a kill that left the collect lease held past the stale
// threshold) and may fire.
type alertRules struct {
	required, forbidden map[string]bool
}

// expectedAlerts derives the rules from what the run did and found: projects over a limit at
// the end, runs left abandoned by kills, late adjustments recorded, and billing cells where
// Stripe differs from ClickHouse (which the nightly reconcile reports as drift).
func expectedAlerts(overLimit, abandoned, late, drift int) alertRules {
	r := alertRules{required: map[string]bool{}, forbidden: map[string]bool{
		"NeonmeterEnforcementBreakerTripped": true, "NeonmeterRollingSweepBehind": true, "NeonmeterBillingUnsendable": true,
	}}
	for name, n := range map[string]int{"NeonmeterProjectOverQuota": overLimit, "NeonmeterCollectionRunAbandoned": abandoned,
		"NeonmeterLateAdjustments": late, "NeonmeterBillingDrift": drift} {
		if n > 0 {
			r.required[name] = true
		} else {
			r.forbidden[name] = true
		}
	}
	return r
}

// seriesLine matches one sample of the text exposition: the name, its labels and the value.
var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)`)

// promtoolInput turns the scrapes into promtool's input series on a step of scrapeInterval
// from the first scrape: each replica's series under an instance label, "_" where the replica
// did not answer (killed, stopped, restarting), keeping only the metrics names keeps.
func promtoolInput(scrapes []scrape, keep map[string]bool) (series map[string][]string, steps int, t0 time.Time) {
	if len(scrapes) == 0 {
		return nil, 0, t0
	}
	t0 = scrapes[0].at
	for _, s := range scrapes {
		steps = max(steps, int(s.at.Sub(t0)/scrapeInterval)+1)
	}
	series = map[string][]string{}
	for _, s := range scrapes {
		i := int(s.at.Sub(t0) / scrapeInterval)
		inst := fmt.Sprintf(`instance="replica-%d"`, s.replica)
		for _, line := range strings.Split(s.text, "\n") {
			m := seriesLine.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(line, "#") || !keep[m[1]] {
				continue
			}
			labels := "{" + inst + "}"
			if m[2] != "" {
				labels = "{" + inst + "," + m[2][1:]
			}
			key := m[1] + labels
			if series[key] == nil {
				series[key] = slices.Repeat([]string{"_"}, steps)
			}
			series[key][i] = m[3]
		}
	}
	return series, steps, t0
}

// checkAlerts evaluates the alert rules with promtool over the scraped metrics, on the
// simulated clock, every alertEvery, and compares what fired with what the run must and may
// fire.
func checkAlerts(ctx context.Context, dir, rulesFile string, scrapes []scrape, want alertRules) (check, error) {
	c := check{name: "the expected alerts fired and no others (promtool over the scraped metrics)"}
	rulesText, err := os.ReadFile(rulesFile)
	if err != nil {
		return c, fmt.Errorf("alert rules: %w", err)
	}
	keep := map[string]bool{}
	for _, n := range regexp.MustCompile(`neonmeter_[a-z0-9_]+`).FindAllString(string(rulesText), -1) {
		keep[n] = true
	}
	names := regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rulesText), -1)
	series, steps, _ := promtoolInput(scrapes, keep)
	if steps == 0 {
		return c, fmt.Errorf("alerts: no scrape of any replica's /metrics")
	}
	abs, err := filepath.Abs(rulesFile)
	if err != nil {
		return c, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rule_files: [%q]\nevaluation_interval: %s\ntests:\n  - interval: %s\n    input_series:\n", abs, scrapeInterval, scrapeInterval)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range series {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "      - series: %q\n        values: %q\n", k, strings.Join(series[k], " "))
	}
	b.WriteString("    alert_rule_test:\n")
	span := time.Duration(steps-1) * scrapeInterval
	for at := alertEvery; at <= span; at += alertEvery {
		for _, n := range names {
			c.compared++
			fmt.Fprintf(&b, "      - {eval_time: %s, alertname: %s, exp_alerts: []}\n", at, n[1])
		}
	}
	testFile := filepath.Join(dir, "alerts_test.yml")
	if err := os.WriteFile(testFile, []byte(b.String()), 0o600); err != nil {
		return c, err
	}
	fired, err := firedAlerts(ctx, testFile)
	if err != nil {
		return c, err
	}
	judgeAlerts(&c, fired, want)
	return c, nil
}

// firedAlerts runs promtool on a test expecting no alert anywhere: every failure it reports is
// an alert that fired, by name, with how many evaluations it fired at.
func firedAlerts(ctx context.Context, testFile string) (map[string]int, error) {
	if _, err := exec.LookPath("promtool"); err != nil {
		return nil, fmt.Errorf("alerts: promtool is required (scripts/deps.sh installs it): %w", err)
	}
	out, err := exec.CommandContext(ctx, "promtool", "test", "rules", testFile).CombinedOutput()
	fired := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s+alertname: (\S+), time: `).FindAllStringSubmatch(string(out), -1) {
		fired[m[1]]++
	}
	if err != nil && len(fired) == 0 {
		return nil, fmt.Errorf("promtool test rules %s: %v\n%s", testFile, err, out[:min(len(out), 2000)])
	}
	return fired, nil
}

// judgeAlerts records a failure for each forbidden alert that fired and each required one
// that never did.
func judgeAlerts(c *check, fired map[string]int, want alertRules) {
	var seen []string
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range fired {
			if !yield(k) {
				return
			}
		}
	}) {
		seen = append(seen, fmt.Sprintf("%s ×%d", n, fired[n]))
		if want.forbidden[n] {
			c.fail("%s fired at %d evaluation(s); nothing the run did should fire it", n, fired[n])
		}
	}
	for n := range want.required {
		if fired[n] == 0 {
			c.fail("%s never fired", n)
		}
	}
	c.detail = "fired: " + strings.Join(seen, ", ")
	if len(seen) == 0 {
		c.detail = "none fired"
	}
}
