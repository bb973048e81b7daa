package chstore

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/schema"
)

const cus = "compute_unit_seconds"

func fact(project, metric string, hour time.Time, value, version uint64) collector.Fact {
	return collector.Fact{OrgID: "org-a", ProjectID: project, Metric: metric, Hour: hour, Value: value, CollectedAt: now, Version: version}
}

// TestUsage_ReadsUsageHourlyRows: the usage reads see usage_hourly's rows (the newest version of
// each fact), only the metrics asked for, without zero values; totals sum a stretch per project
// and metric at its first hour.
func TestUsage_ReadsUsageHourlyRows(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	h1, h2 := h0.Add(time.Hour), h0.Add(2*time.Hour)
	facts := []collector.Fact{
		fact("p1", cus, h0, 100, 1), fact("p1", cus, h0, 300, 2), // revised: 300 wins
		fact("p1", cus, h1, 50, 1),
		fact("p2", cus, h0, 7, 1), fact("p2", cus, h0, 0, 2), // revised to zero: no row
		fact("p2", "written_data_bytes", h1, 9, 1),
		fact("p3", "active_time_seconds", h0, 3600, 1), // not asked for
		fact("p3", cus, h2, 11, 1),                     // outside [h0, h2)
	}
	if err := collectorstore.New(s.Conn, s.DB).InsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	metrics := []string{cus, "written_data_bytes"}
	got, err := s.Usage(ctx, metrics, h0, h2)
	if err != nil {
		t.Fatal(err)
	}
	want := []billing.HourlyUsage{
		{ProjectID: "p1", Metric: cus, Hour: h0, Value: 300}, {ProjectID: "p1", Metric: cus, Hour: h1, Value: 50},
		{ProjectID: "p2", Metric: "written_data_bytes", Hour: h1, Value: 9},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("usage:\n got %+v\nwant %+v", got, want)
	}
	totals, err := s.UsageTotals(ctx, metrics, h0, h2)
	if err != nil {
		t.Fatal(err)
	}
	wantTotals := []billing.HourlyUsage{{ProjectID: "p1", Metric: cus, Hour: h0, Value: 350}, {ProjectID: "p2", Metric: "written_data_bytes", Hour: h0, Value: 9}}
	if !reflect.DeepEqual(totals, wantTotals) {
		t.Fatalf("totals:\n got %+v\nwant %+v", totals, wantTotals)
	}
	of, err := s.UsageOf(ctx, metrics, []string{"p2"}, h0, h2)
	if err != nil || !reflect.DeepEqual(of, want[2:]) {
		t.Fatalf("usage of p2 = %+v, err %v; want %+v", of, err, want[2:])
	}
	for name, read := range map[string]func() ([]billing.HourlyUsage, error){
		"usage, no metrics":    func() ([]billing.HourlyUsage, error) { return s.Usage(ctx, nil, h0, h2) },
		"totals, no metrics":   func() ([]billing.HourlyUsage, error) { return s.UsageTotals(ctx, nil, h0, h2) },
		"usage of no projects": func() ([]billing.HourlyUsage, error) { return s.UsageOf(ctx, metrics, nil, h0, h2) },
	} {
		if rows, err := read(); err != nil || len(rows) != 0 {
			t.Errorf("%s: %d rows, err %v; want none", name, len(rows), err)
		}
	}
}

// TestUsageOf_ReadsInChunks: more projects than one IN list holds are all read.
func TestUsageOf_ReadsInChunks(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	n := schema.MaxInList + 5
	var facts []collector.Fact
	var ids []string
	for i := range n {
		p := fmt.Sprintf("p-%05d", i)
		ids = append(ids, p)
		facts = append(facts, fact(p, cus, h0, uint64(i+1), 1))
	}
	if err := collectorstore.New(s.Conn, s.DB).InsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	got, err := s.UsageOf(ctx, []string{cus}, ids, h0, h0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[n-1].ProjectID != ids[n-1] || got[n-1].Value != uint64(n) {
		t.Fatalf("read %d rows of %d projects (last %+v)", len(got), n, got[len(got)-1])
	}
}
