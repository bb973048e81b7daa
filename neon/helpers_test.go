package neon_test

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// testFrom is an hour inside every lookback relative to itself; tests that use their own
// servers never depend on the wall clock.
var testFrom = time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)

// pageSpec describes a synthetic v2 (or legacy) page in Neon's shape.
type pageSpec struct {
	firstProject int // projects are named proj-<n>
	projects     int
	hours        int
	metrics      []string
	cursor       string // "" = no pagination object
	legacy       bool
}

// testValue is the deterministic value of a synthetic bucket; some are 0 and so omitted.
func testValue(project, hour, metric int) int64 {
	v := int64(project*1_000_003+hour*7919+metric*104_729) * 1_000
	if (project+hour+metric)%11 == 0 {
		return 0
	}
	return v
}

func projectID(n int) string { return fmt.Sprintf("proj-%08d", n) }

// buildPage writes the page by hand, as a server would, so tests control every byte.
func buildPage(s pageSpec) []byte {
	b := make([]byte, 0, 1<<16)
	b = append(b, `{"projects":[`...)
	for p := 0; p < s.projects; p++ {
		pn := s.firstProject + p
		if p > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"project_id":"`...)
		b = append(b, projectID(pn)...)
		b = append(b, `","periods":[{"period_id":"6f1c2d3e-0000-4000-8000-`...)
		b = append(b, fmt.Sprintf("%012d", pn)...)
		b = append(b, `","period_plan":"scale","period_start":"2026-05-01T00:00:00Z","consumption":[`...)
		first := true
		for h := 0; h < s.hours; h++ {
			start := testFrom.Add(time.Duration(h) * time.Hour)
			var ms []byte
			n := 0
			for mi, m := range s.metrics {
				v := testValue(pn, h, mi)
				if v == 0 {
					continue
				}
				if s.legacy {
					if n > 0 {
						ms = append(ms, ',')
					}
					ms = append(ms, '"')
					ms = append(ms, m...)
					ms = append(ms, `":`...)
					ms = strconv.AppendInt(ms, v, 10)
				} else {
					if n > 0 {
						ms = append(ms, ',')
					}
					ms = append(ms, `{"metric_name":"`...)
					ms = append(ms, m...)
					ms = append(ms, `","value":`...)
					ms = strconv.AppendInt(ms, v, 10)
					ms = append(ms, '}')
				}
				n++
			}
			if n == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"timeframe_start":"`...)
			b = start.AppendFormat(b, time.RFC3339)
			b = append(b, `","timeframe_end":"`...)
			b = start.Add(time.Hour).AppendFormat(b, time.RFC3339)
			if s.legacy {
				b = append(b, `",`...)
				b = append(b, ms...)
				b = append(b, '}')
			} else {
				b = append(b, `","metrics":[`...)
				b = append(b, ms...)
				b = append(b, `]}`...)
			}
		}
		b = append(b, `]}]}`...)
	}
	b = append(b, ']')
	if s.cursor != "" {
		b = append(b, `,"pagination":{"cursor":"`...)
		b = append(b, s.cursor...)
		b = append(b, `"}`...)
	}
	b = append(b, '}')
	return b
}

func hourlyQuery(org string, hours int) neon.ConsumptionQuery {
	return neon.ConsumptionQuery{
		OrgID: org, From: testFrom, To: testFrom.Add(time.Duration(hours) * time.Hour),
		Granularity: neon.GranularityHourly,
	}
}

const testKey = "napi_TESTSECRET_k3y_0123456789abcdef"

// testConfig is fast: tiny backoffs and buckets that never wait unless a test says so.
func testConfig(baseURL string) neon.Config {
	return neon.Config{
		BaseURL:               baseURL,
		APIKey:                testKey,
		MinBackoff:            time.Millisecond,
		MaxBackoff:            5 * time.Millisecond,
		ConsumptionRatePerMin: 6e6,
		ConsumptionBurst:      1000,
		GeneralRatePerMin:     6e6,
		GeneralBurst:          1000,
		OperationPollInterval: time.Millisecond,
	}
}

func newClient(t testing.TB, cfg neon.Config) *neon.Client {
	t.Helper()
	c, err := neon.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// collect drains a page iterator.
func collect[P any](seq iter.Seq2[*P, error]) ([]*P, error) {
	var out []*P
	for p, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// countingServer serves h on httptest and counts requests.
type countingServer struct {
	*httptest.Server
	n atomic.Int64
}

func serve(t testing.TB, h func(w http.ResponseWriter, r *http.Request, n int64)) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, cs.n.Add(1))
	}))
	t.Cleanup(cs.Close)
	return cs
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func generalError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg, "request_id": r.Header.Get("X-Request-ID")})
	writeJSON(w, status, b)
}

// syncList collects strings from handler goroutines.
type syncList struct {
	mu sync.Mutex
	v  []string
}

func (l *syncList) add(s string) {
	l.mu.Lock()
	l.v = append(l.v, s)
	l.mu.Unlock()
}

func (l *syncList) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.v)
}

func (l *syncList) last() string {
	all := l.all()
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// mentions fails the test for each of subs that err's message lacks.
func mentions(t *testing.T, err error, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}
