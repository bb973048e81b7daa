package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
)

// scrape is one replica's /metrics at a simulated time.
type scrape struct {
	at      time.Time // simulated
	replica int
	text    string
}

// scraper reads every replica's /metrics once per simulated scrape interval, as Prometheus
// would, for the alert rules and the secret scan.
type scraper struct {
	mu   sync.Mutex
	all  []scrape
	fail int
}

// scrapeInterval is the simulated time between two scrapes.
const scrapeInterval = 15 * time.Minute

// run scrapes until ctx ends.
func (s *scraper) run(ctx context.Context, w *world, fl *fleet) {
	client := &http.Client{Timeout: 2 * time.Second}
	next := w.clock.Now().Truncate(scrapeInterval).Add(scrapeInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(w.clock.RealAt(next))):
		}
		for _, r := range fl.replicas {
			text, err := get(ctx, client, "http://"+r.addr+"/metrics")
			s.mu.Lock()
			if err != nil {
				s.fail++ // a killed, stopped or starting replica: Prometheus would see it down
			} else {
				s.all = append(s.all, scrape{at: next, replica: r.slot, text: text})
			}
			s.mu.Unlock()
		}
		next = next.Add(scrapeInterval)
	}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (s *scraper) scrapes() []scrape {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scrape(nil), s.all...)
}

// checkSecrets scans everything the run wrote for a prefix of the keys the replicas were given:
// the replicas' and commands' logs and the run's files, every string column of the database,
// and every scrape of /metrics.
func (w *world) checkSecrets(ctx context.Context, scrapes []scrape) (check, error) {
	c := check{name: "no prefix of a key in logs, ClickHouse rows or metrics"}
	keys := []string{w.apiKey, w.stripeK}
	found, err := redacttest.ScanDir(w.dir, keys...)
	if err != nil {
		return c, err
	}
	rows, err := redacttest.ScanClickHouse(ctx, w.conn, w.o.Database, keys...)
	if err != nil {
		return c, err
	}
	found = append(found, rows...)
	for _, s := range scrapes {
		found = append(found, redacttest.ScanText(fmt.Sprintf("metrics of replica %d at %s", s.replica, s.at.Format(time.RFC3339)), s.text, keys...)...)
	}
	for _, f := range found {
		c.fail("%s", f)
	}
	c.compared = int64(len(scrapes)) + 2
	c.detail = fmt.Sprintf("the run's directory, database %s and %d scrapes of /metrics, for 2 keys", w.o.Database, len(scrapes))
	return c, nil
}
