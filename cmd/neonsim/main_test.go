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
)

func TestRun_Help(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"projects", "seed", "addr", "api-key", "consumption-rate", "general-rate",
		"operation-delay", "fault-429", "fault-500", "fault-503", "fault-423", "fault-slow", "fault-truncated",
		"fault-malformed", "fault-repeat-page", "fault-unavailable", "fault-seed"} {
		if !strings.Contains(out.String(), "-"+f) {
			t.Errorf("--help does not explain --%s", f)
		}
	}
}

func TestRun_BadUsage(t *testing.T) {
	for _, args := range [][]string{{"--projects", "2"}, {"--nope"}, {"extra"}, {"--general-rate", "-1"}} {
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
