package chstore_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/collector"
)

func TestWatermarks(t *testing.T) {
	store := newTestStore(t)
	now := time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)
	type set struct {
		org         string
		endpoint    collector.Endpoint
		granularity collector.Granularity
		covered     time.Time
		now         time.Time
	}
	type get struct {
		org         string
		endpoint    collector.Endpoint
		granularity collector.Granularity
		want        time.Time
		found       bool
	}
	tests := []struct {
		name string
		sets []set
		gets []get
	}{
		{
			name: "nothing recorded",
			gets: []get{{"org-1", collector.EndpointV2, collector.GranularityHourly, time.Time{}, false}},
		},
		{
			name: "set then read",
			sets: []set{{"org-1", collector.EndpointV2, collector.GranularityHourly, now.Add(-2 * time.Hour).Truncate(time.Hour), now}},
			gets: []get{{"org-1", collector.EndpointV2, collector.GranularityHourly, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), true}},
		},
		{
			name: "later update wins, even moving back",
			sets: []set{
				{"org-1", collector.EndpointV2, collector.GranularityDaily, now.AddDate(0, 0, -1), now},
				{"org-1", collector.EndpointV2, collector.GranularityDaily, now.AddDate(0, 0, -10), now.Add(time.Hour)},
			},
			gets: []get{{"org-1", collector.EndpointV2, collector.GranularityDaily, now.AddDate(0, 0, -10), true}},
		},
		{
			name: "an update with an older clock loses",
			sets: []set{
				{"org-1", collector.EndpointLegacy, collector.GranularityHourly, now, now.Add(time.Hour)},
				{"org-1", collector.EndpointLegacy, collector.GranularityHourly, now.Add(-time.Hour), now},
			},
			gets: []get{{"org-1", collector.EndpointLegacy, collector.GranularityHourly, now, true}},
		},
		{
			name: "keys are independent",
			sets: []set{
				{"org-2", collector.EndpointV2, collector.GranularityHourly, now, now},
				{"org-2", collector.EndpointV2, collector.GranularityMonthly, now.AddDate(0, -1, 0), now},
			},
			gets: []get{
				{"org-2", collector.EndpointV2, collector.GranularityHourly, now, true},
				{"org-2", collector.EndpointV2, collector.GranularityMonthly, now.AddDate(0, -1, 0), true},
				{"org-2", collector.EndpointLegacy, collector.GranularityHourly, time.Time{}, false},
				{"org-3", collector.EndpointV2, collector.GranularityHourly, time.Time{}, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.sets {
				f := collector.Feed{OrgID: s.org, Endpoint: s.endpoint, Granularity: s.granularity}
				if err := store.SetWatermark(t.Context(), f, s.covered, s.now); err != nil {
					t.Fatalf("set watermark: %v", err)
				}
			}
			for _, g := range tt.gets {
				f := collector.Feed{OrgID: g.org, Endpoint: g.endpoint, Granularity: g.granularity}
				got, found, err := store.Watermark(t.Context(), f)
				if err != nil {
					t.Fatalf("watermark: %v", err)
				}
				if found != g.found || !got.Equal(g.want) || (found && got.Location() != time.UTC) {
					t.Fatalf("watermark %s %s %s = %v, %v; want %v, %v", g.org, g.endpoint, g.granularity, got, found, g.want, g.found)
				}
			}
		})
	}
}

func TestSetWatermark_Invalid(t *testing.T) {
	store := newTestStore(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []collector.Feed{
		{OrgID: "", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly},
		{OrgID: "org-1", Endpoint: "v3", Granularity: collector.GranularityHourly},
		{OrgID: "org-1", Endpoint: collector.EndpointV2, Granularity: "weekly"},
	} {
		if err := store.SetWatermark(t.Context(), c, now, now); err == nil {
			t.Errorf("set watermark %+v: want an error", c)
		}
	}
	if n := store.rows(t, "collection_watermarks"); n != 0 {
		t.Fatalf("collection_watermarks has %d rows after refused writes", n)
	}
}
