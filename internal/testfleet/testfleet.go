// Package testfleet is the one test fixture of a simulated Neon fleet: the simulator on real
// HTTP, a Neon client paced for tests, a migrated ClickHouse database of the test's own and a
// settable clock the simulator and the stage under test share. Every stage's tests start here.
package testfleet

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testclock"
	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// APIKey is the key the simulator accepts and the client sends.
const APIKey = "test-key"

// Options shape the fleet. Zero values take the defaults named.
type Options struct {
	Projects int       // default 100
	Seed     int64     // default 7
	Now      time.Time // the clock's start; default 2026-11-27 12:40 UTC (mid-hour)
	// Sim adjusts the simulator's configuration before it starts (rates, delays).
	Sim func(*sim.Config)
	// AllowWakes turns off the check, run when the test ends, that no idle compute was woken.
	AllowWakes bool
	// Wrap, if set, stands between the client and the simulator's handler: a test plays a
	// hostile or broken Neon by rewriting answers (see Rewrite).
	Wrap func(http.Handler) http.Handler
}

// Fleet is a running simulated fleet with a client and a database.
type Fleet struct {
	Clock  *testclock.Clock
	Sim    *sim.Sim
	URL    string // the API base, ending in /api/v2
	Client *neon.Client
	Conn   driver.Conn
	DB     string
}

// DefaultNow is mid-hour, so provisional windows and revisions are exercised.
var DefaultNow = time.Date(2026, 11, 27, 12, 40, 0, 0, time.UTC)

// New starts a fleet for the test; everything stops when the test ends.
func New(t testing.TB, o Options) *Fleet {
	t.Helper()
	if o.Projects == 0 {
		o.Projects = 100
	}
	if o.Seed == 0 {
		o.Seed = 7
	}
	if o.Now.IsZero() {
		o.Now = DefaultNow
	}
	clk := testclock.New(o.Now)
	cfg := sim.Config{Projects: o.Projects, Seed: o.Seed, Now: clk.Now, APIKey: APIKey}
	if o.Sim != nil {
		o.Sim(&cfg)
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("testfleet: simulator: %v", err)
	}
	h := s.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &Fleet{Clock: clk, Sim: s, URL: srv.URL + "/api/v2"}
	f.Client = f.NewClient(t, nil)
	f.Conn, f.DB = chtest.New(t)
	if !o.AllowWakes {
		t.Cleanup(func() {
			if w := s.Stats().Wakes; w != 0 {
				t.Errorf("the simulator counted %d wakes of idle computes; neonmeter must wake none", w)
			}
		})
	}
	return f
}

// NewClient returns another client of the fleet, fast-paced and quick to retry, adjusted by
// edit when not nil.
func (f *Fleet) NewClient(t testing.TB, edit func(*neon.Config)) *neon.Client {
	t.Helper()
	cfg := ClientConfig(f.URL)
	if edit != nil {
		edit(&cfg)
	}
	c, err := neon.NewClient(cfg)
	if err != nil {
		t.Fatalf("testfleet: client: %v", err)
	}
	return c
}

// ClientConfig is the fleet's client settings for the API at baseURL: fast-paced, quick to
// retry, on a registry of its own. A crash test's child process, which has no *testing.T,
// builds its client from it.
func ClientConfig(baseURL string) neon.Config {
	return neon.Config{
		BaseURL: baseURL, APIKey: APIKey, ConsumptionRatePerMin: 1e6, ConsumptionBurst: 100,
		GeneralRatePerMin: 1e6, GeneralBurst: 100, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxRetries: 30, OperationPollInterval: 2 * time.Millisecond, Registerer: prometheus.NewRegistry(),
	}
}

// Org returns the first org on the plan ("free", "launch", "scale"), or the legacy org for
// "legacy".
func (f *Fleet) Org(t testing.TB, plan string) sim.Org {
	t.Helper()
	for _, o := range f.Sim.Orgs() {
		if o.Plan == plan || (plan == "legacy" && o.Legacy) {
			return o
		}
	}
	t.Fatalf("testfleet: the simulator has no %s org", plan)
	return sim.Org{}
}

// Rewrite returns a Wrap that passes every answer of the simulator through edit (request,
// status, body → new status and body; Content-Length follows), for answers a well-behaved
// simulator never gives: values near int64 max, an empty project list, a cursor that never
// ends.
func Rewrite(edit func(r *http.Request, status int, body []byte) (int, []byte)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			status, body := edit(r, rec.Code, rec.Body.Bytes())
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			_, _ = w.Write(body)
		})
	}
}
