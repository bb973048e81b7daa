package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/simclock"
)

func TestRun_Help(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"projects", "seed", "addr", "api-key", "consumption-rate", "general-rate",
		"time-scale", "start", "clock", "active-share",
		"operation-delay", "fault-429", "fault-500", "fault-503", "fault-423", "fault-slow", "fault-truncated",
		"fault-malformed", "fault-repeat-page", "fault-unavailable", "fault-seed"} {
		if !strings.Contains(out.String(), "-"+f) {
			t.Errorf("--help does not explain --%s", f)
		}
	}
}

func TestRun_BadUsage(t *testing.T) {
	for _, args := range [][]string{{"--projects", "2"}, {"--nope"}, {"extra"}, {"--general-rate", "-1"},
		{"--time-scale", "-5s"}, {"--time-scale", "1ms"}, {"--start", "yesterday"}, {"--clock", "start=2026-11-01T00:00:00Z"},
		{"--clock", "start=2026-11-01T00:00:00Z,anchor=2026-12-01T00:00:00Z,hour=5s", "--time-scale", "5s"},
		{"--active-share", "0.9"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestRun_Serves starts the simulator on a free port, reads its banner, calls the API with the
// key and stops it gracefully.
func TestRun_Serves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--projects", "40", "--seed", "7", "--addr", "127.0.0.1:0", "--api-key", "k", "--fault-seed", "3"}, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no banner: %v", <-done)
	}
	banner := lines.Text()
	_, url, ok := strings.Cut(banner, "base URL ")
	if !ok {
		t.Fatalf("banner %q has no base URL", banner)
	}
	url, _, _ = strings.Cut(url, " ")
	var orgs []string
	for range 4 {
		lines.Scan()
		orgs = append(orgs, lines.Text())
	}
	if !strings.HasPrefix(orgs[0], "org org-sim-free plan free projects ") || !strings.Contains(orgs[3], "plan business") {
		t.Fatalf("org lines: %q", orgs)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	for key, want := range map[string]int{"k": 200, "": 401} {
		req, _ := http.NewRequest(http.MethodGet, url+"/projects?limit=5", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("key %q: status %d, want %d", key, resp.StatusCode, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

// startRun runs the simulator with args on a free port and returns its banner's base URL and
// the lines after it up to and including the last org line (plus the clock line if any).
func startRun(t *testing.T, args []string, extra int) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("graceful shutdown: %v", err)
		}
	})
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no banner")
	}
	_, url, _ := strings.Cut(lines.Text(), "base URL ")
	url, _, _ = strings.Cut(url, " ")
	var rest []string
	for range 4 + extra {
		lines.Scan()
		rest = append(rest, lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return url, rest
}

// TestRun_AcceleratedClock: with --time-scale and --start the simulator prints its clock's
// spec, reports usage on the simulated time line (a window a month before the real date is
// inside Neon's 168 hours) and counts its consumption limit per simulated minute: at 1 request
// per simulated minute and one simulated hour per real second, ten requests go through within
// a few real seconds, where a real-time bucket would allow one a minute; never more than the
// simulated minutes allow.
func TestRun_AcceleratedClock(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	url, lines := startRun(t, []string{"--projects", "40", "--time-scale", "1s", "--start", start.Format(time.RFC3339),
		"--consumption-rate", "1", "--active-share", "0.1"}, 1)
	spec, ok := strings.CutPrefix(lines[4], "clock ")
	if !ok {
		t.Fatalf("no clock line: %q", lines)
	}
	clk, err := simclock.Parse(spec)
	if err != nil || !clk.Start().Equal(start) || clk.Hour() != time.Second {
		t.Fatalf("clock %q: %v, %v", spec, clk, err)
	}
	begin := time.Now()
	ok200 := 0
	for ok200 < 10 && time.Since(begin) < 10*time.Second {
		now := clk.Now().Truncate(time.Hour)
		q := "?org_id=org-sim-scale&granularity=hourly&metrics=compute_unit_seconds&from=" +
			now.Add(-3*time.Hour).Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339)
		resp, err := http.Get(url + "/consumption_history/v2/projects" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			ok200++
		case 429:
			time.Sleep(5 * time.Millisecond)
			if resp.Header.Get("Retry-After") != "" {
				t.Errorf("Retry-After on a simulated clock")
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	simMinutes := int(clk.Simulated(time.Since(begin)) / time.Minute)
	if ok200 < 10 || ok200 > simMinutes+2 {
		t.Fatalf("%d requests served in %d simulated minutes", ok200, simMinutes)
	}
}
