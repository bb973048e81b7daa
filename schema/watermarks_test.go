package schema_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestWatermarks(t *testing.T) {
	conn, db := chtest.New(t)
	now := time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)
	type set struct {
		org, endpoint, granularity string
		covered, now               time.Time
	}
	type get struct {
		org, endpoint, granularity string
		want                       time.Time
		found                      bool
	}
	tests := []struct {
		name string
		sets []set
		gets []get
	}{
		{
			name: "nothing recorded",
			gets: []get{{"org-1", schema.EndpointV2, schema.GranularityHourly, time.Time{}, false}},
		},
		{
			name: "set then read",
			sets: []set{{"org-1", schema.EndpointV2, schema.GranularityHourly, now.Add(-2 * time.Hour).Truncate(time.Hour), now}},
			gets: []get{{"org-1", schema.EndpointV2, schema.GranularityHourly, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), true}},
		},
		{
			name: "later update wins, even moving back",
			sets: []set{
				{"org-1", schema.EndpointV2, schema.GranularityDaily, now.AddDate(0, 0, -1), now},
				{"org-1", schema.EndpointV2, schema.GranularityDaily, now.AddDate(0, 0, -10), now.Add(time.Hour)},
			},
			gets: []get{{"org-1", schema.EndpointV2, schema.GranularityDaily, now.AddDate(0, 0, -10), true}},
		},
		{
			name: "an update with an older clock loses",
			sets: []set{
				{"org-1", schema.EndpointLegacy, schema.GranularityHourly, now, now.Add(time.Hour)},
				{"org-1", schema.EndpointLegacy, schema.GranularityHourly, now.Add(-time.Hour), now},
			},
			gets: []get{{"org-1", schema.EndpointLegacy, schema.GranularityHourly, now, true}},
		},
		{
			name: "keys are independent",
			sets: []set{
				{"org-2", schema.EndpointV2, schema.GranularityHourly, now, now},
				{"org-2", schema.EndpointV2, schema.GranularityMonthly, now.AddDate(0, -1, 0), now},
			},
			gets: []get{
				{"org-2", schema.EndpointV2, schema.GranularityHourly, now, true},
				{"org-2", schema.EndpointV2, schema.GranularityMonthly, now.AddDate(0, -1, 0), true},
				{"org-2", schema.EndpointLegacy, schema.GranularityHourly, time.Time{}, false},
				{"org-3", schema.EndpointV2, schema.GranularityHourly, time.Time{}, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.sets {
				if err := schema.SetWatermark(t.Context(), conn, db, s.org, s.endpoint, s.granularity, s.covered, s.now); err != nil {
					t.Fatalf("set watermark: %v", err)
				}
			}
			for _, g := range tt.gets {
				got, found, err := schema.Watermark(t.Context(), conn, db, g.org, g.endpoint, g.granularity)
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
	conn, db := chtest.New(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ org, endpoint, granularity string }{
		{"", schema.EndpointV2, schema.GranularityHourly},
		{"org-1", "v3", schema.GranularityHourly},
		{"org-1", schema.EndpointV2, "weekly"},
	} {
		if err := schema.SetWatermark(t.Context(), conn, db, c.org, c.endpoint, c.granularity, now, now); err == nil {
			t.Errorf("set watermark %+v: want an error", c)
		}
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".collection_watermarks"); n != 0 {
		t.Fatalf("collection_watermarks has %d rows after refused writes", n)
	}
}
