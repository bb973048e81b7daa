package collector_test

import (
	"context"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/schema"
)

// testNow is the fleet's clock at the start: mid-hour, so the provisional window and revisions
// are exercised.
var testNow = testfleet.DefaultNow

// fleet is the shared test fleet with the collector's helpers on top.
type fleet struct {
	*testfleet.Fleet
}

func newFleet(t *testing.T, projects int) *fleet {
	t.Helper()
	return &fleet{testfleet.New(t, testfleet.Options{Projects: projects})}
}

func (f *fleet) store() *collectorstore.Store { return collectorstore.New(f.Conn, f.DB) }

// collector returns a collector of the org on the fleet's client, database and clock.
func (f *fleet) collector(t *testing.T, org sim.Org) *collector.Collector {
	t.Helper()
	ep := collector.EndpointV2
	if org.Legacy {
		ep = collector.EndpointLegacy
	}
	c, err := collector.New(collector.Config{
		Consumption: f.Client, Store: f.store(), OrgID: org.ID, Endpoint: ep,
		Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Now: f.Clock.Now, FlushRows: 20_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// window72h is the 72 complete hours before the clock.
func (f *fleet) window72h() collector.Window {
	to := f.Clock.Now().Truncate(time.Hour)
	return collector.Window{From: to.Add(-72 * time.Hour), To: to}
}

// truth returns the simulator's ground truth of every (project, metric, hour) of an org.
func (f *fleet) truth(org sim.Org, w collector.Window, metrics []string) map[string]int64 {
	out := map[string]int64{}
	for _, p := range org.ProjectIDs {
		for _, m := range metrics {
			for h := w.From; h.Before(w.To); h = h.Add(time.Hour) {
				out[p+"/"+m+"/"+h.Format(time.RFC3339)] = f.Sim.Value(p, m, h)
			}
		}
	}
	return out
}

// assertExact compares, for every project of the org and every metric, the sum of usage_hourly
// over the window with the simulator's ground truth, and every single hour for a sample.
func (f *fleet) assertExact(t *testing.T, org sim.Org, w collector.Window, metrics []string) {
	t.Helper()
	totals := f.usageTotals(t, org.ID, w.From, w.To)
	mismatches := 0
	var nonzero int
	for _, p := range org.ProjectIDs {
		for _, m := range metrics {
			var want uint64
			for h := w.From; h.Before(w.To); h = h.Add(time.Hour) {
				want += uint64(f.Sim.Value(p, m, h))
			}
			got := totals[[2]string{p, m}]
			if got != want {
				if mismatches < 10 {
					t.Errorf("project %s metric %s: usage_hourly sum %d, ground truth %d", p, m, got, want)
				}
				mismatches++
			}
			if want > 0 {
				nonzero++
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d (project, metric) sums differ from ground truth", mismatches)
	}
	if nonzero == 0 {
		t.Fatalf("ground truth is all zero: the comparison proves nothing")
	}
}

// usageTotals sums the org's usage per (project, metric) over [from, to) as a downstream stage
// reads it: through the usage_hourly view.
func (f *fleet) usageTotals(t *testing.T, orgID string, from, to time.Time) map[[2]string]uint64 {
	t.Helper()
	q := schema.Query{Name: "test.usage_totals", Kind: schema.KindSelect, Args: []any{orgID, from.UTC(), to.UTC()},
		SQL: `SELECT project_id, metric, sum(value) FROM {db}.usage_hourly
WHERE org_id = ? AND hour >= ? AND hour < ? GROUP BY project_id, metric`}
	return chtest.Totals(t, f.Conn, f.DB, q)
}

// coarseKey identifies a stored coarse fact of one org.
type coarseKey struct {
	ProjectID   string
	Metric      string
	Granularity collector.Granularity
	BucketStart time.Time
}

// coarseValue is a stored coarse fact's latest value and version.
type coarseValue struct {
	Value, Version uint64
}

// storedCoarse reads the org's latest coarse facts whose bucket starts in [from, to).
func (f *fleet) storedCoarse(t *testing.T, orgID string, from, to time.Time) map[coarseKey]coarseValue {
	t.Helper()
	q := schema.Query{Name: "test.stored_coarse", Kind: schema.KindSelect, Args: []any{orgID, from.UTC(), to.UTC()},
		SQL: `SELECT project_id, metric, granularity, bucket_start, value, version
FROM {db}.usage_coarse FINAL WHERE org_id = ? AND bucket_start >= ? AND bucket_start < ?`}
	out := map[coarseKey]coarseValue{}
	err := q.Each(context.Background(), f.Conn, f.DB, func(row schema.Row) error {
		var (
			k           coarseKey
			granularity string
			v           coarseValue
		)
		if err := row.Scan(&k.ProjectID, &k.Metric, &granularity, &k.BucketStart, &v.Value, &v.Version); err != nil {
			return err
		}
		k.Granularity, k.BucketStart = collector.Granularity(granularity), k.BucketStart.UTC()
		out[k] = v
		return nil
	})
	if err != nil {
		t.Fatalf("stored coarse facts: %v", err)
	}
	return out
}
