package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

// isTerminal reports whether w is a character device (an interactive terminal).
func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressReporter prints pages done of the estimate, values/s and ETA: a line redrawn in place
// on a terminal, a structured log line every interval otherwise.
func progressReporter(w io.Writer, log *slog.Logger, every time.Duration) func(collector.Progress) {
	tty := isTerminal(w)
	var last time.Time
	return func(p collector.Progress) {
		if time.Since(last) < every && !(p.EstimatedPages > 0 && p.Pages == p.EstimatedPages) {
			return
		}
		last = time.Now()
		rate := 0.0
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = float64(p.Values) / s
		}
		eta := "unknown"
		total := "?"
		if p.EstimatedPages > 0 {
			total = fmt.Sprint(p.EstimatedPages)
			if left := p.EstimatedPages - p.Pages; left > 0 && p.Pages > 0 {
				eta = (time.Duration(float64(p.Elapsed) / float64(p.Pages) * float64(left))).Round(time.Second).String()
			} else {
				eta = "0s"
			}
		}
		if tty {
			fmt.Fprintf(w, "\rpages %d/%s  values %d  %.0f values/s  ETA %s   ", p.Pages, total, p.Values, rate, eta)
			return
		}
		log.Info("progress", "pages", p.Pages, "estimated_pages", p.EstimatedPages, "values", p.Values,
			"values_per_second", int64(rate), "eta", eta)
	}
}
