package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// Not a terminal: progress goes out as structured log lines, throttled, with the last page
// always reported.
func TestProgressReporter_LogLines(t *testing.T) {
	var logs bytes.Buffer
	report := progressReporter(&bytes.Buffer{}, slog.New(slog.NewTextHandler(&logs, nil)), time.Hour)
	for page := 1; page <= 10; page++ {
		report(collector.Progress{Pages: page, EstimatedPages: 10, Values: int64(page) * 1000, Elapsed: time.Duration(page) * time.Second})
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the first and the last page reported, got %d lines:\n%s", len(lines), logs.String())
	}
	last := lines[1]
	for _, want := range []string{"pages=10", "estimated_pages=10", "values=10000", "values_per_second=1000", "eta=0s"} {
		if !strings.Contains(last, want) {
			t.Errorf("last progress line lacks %s: %s", want, last)
		}
	}
	if !strings.Contains(lines[0], "eta=9s") {
		t.Errorf("first line should estimate 9 s left: %s", lines[0])
	}
}
