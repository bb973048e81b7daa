package collector

import (
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPlanBackfill(t *testing.T) {
	now := mustTime(t, "2026-11-27T17:40:00Z")
	// Hourly window: last hour 17:00 - 167h = 2026-11-20T18:00 -> hourly starts 2026-11-21.
	// Daily window: 2026-11-27 - 59d = 2026-09-29 -> daily starts 2026-10-01.
	cases := []struct {
		name     string
		from, to string
		want     []Segment
		wantErr  bool
	}{
		{name: "inside hourly window", from: "2026-11-25T03:30:00Z", to: "2026-11-27T17:00:00Z",
			want: []Segment{{GranularityHourly, mustTime(t, "2026-11-25T03:00:00Z"), mustTime(t, "2026-11-27T17:00:00Z")}}},
		{name: "to clamped to last complete hour", from: "2026-11-27T10:00:00Z", to: "2026-11-28T00:00:00Z",
			want: []Segment{{GranularityHourly, mustTime(t, "2026-11-27T10:00:00Z"), mustTime(t, "2026-11-27T17:00:00Z")}}},
		{name: "daily then hourly", from: "2026-11-10T05:00:00Z", to: "2026-11-27T17:00:00Z",
			want: []Segment{
				{GranularityDaily, mustTime(t, "2026-11-10T00:00:00Z"), mustTime(t, "2026-11-21T00:00:00Z")},
				{GranularityHourly, mustTime(t, "2026-11-21T00:00:00Z"), mustTime(t, "2026-11-27T17:00:00Z")},
			}},
		{name: "monthly daily hourly", from: "2026-03-15T00:00:00Z", to: "2026-11-27T17:00:00Z",
			want: []Segment{
				{GranularityMonthly, mustTime(t, "2026-03-01T00:00:00Z"), mustTime(t, "2026-10-01T00:00:00Z")},
				{GranularityDaily, mustTime(t, "2026-10-01T00:00:00Z"), mustTime(t, "2026-11-21T00:00:00Z")},
				{GranularityHourly, mustTime(t, "2026-11-21T00:00:00Z"), mustTime(t, "2026-11-27T17:00:00Z")},
			}},
		{name: "old range only, rounded to whole months", from: "2026-04-10T00:00:00Z", to: "2026-05-20T00:00:00Z",
			want: []Segment{{GranularityMonthly, mustTime(t, "2026-04-01T00:00:00Z"), mustTime(t, "2026-06-01T00:00:00Z")}}},
		{name: "older than a year", from: "2025-06-01T00:00:00Z", to: "2026-11-01T00:00:00Z", wantErr: true},
		{name: "empty", from: "2026-11-27T10:00:00Z", to: "2026-11-27T10:00:00Z", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanBackfill(mustTime(t, tc.from), mustTime(t, tc.to), now)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Granularity != tc.want[i].Granularity || !got[i].From.Equal(tc.want[i].From) || !got[i].To.Equal(tc.want[i].To) {
					t.Errorf("segment %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
			// Segments must tile: each starts where the previous ended.
			for i := 1; i < len(got); i++ {
				if !got[i].From.Equal(got[i-1].To) {
					t.Errorf("segments %d and %d do not meet: %v then %v", i-1, i, got[i-1], got[i])
				}
			}
		})
	}
}

func TestGaps(t *testing.T) {
	h := func(n int) time.Time { return mustTime(t, "2026-11-01T00:00:00Z").Add(time.Duration(n) * time.Hour) }
	covered := []Range{{h(5), h(10)}, {h(0), h(3)}, {h(8), h(12)}, {h(20), h(30)}}
	got := Gaps(covered, h(0), h(24))
	want := []Range{{h(3), h(5)}, {h(12), h(20)}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
			t.Errorf("gap %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if g := Gaps(nil, h(0), h(2)); len(g) != 1 || g[0].Hours() != 2 {
		t.Errorf("no coverage: got %v", g)
	}
	if g := Gaps([]Range{{h(-5), h(50)}}, h(0), h(24)); len(g) != 0 {
		t.Errorf("full coverage: got %v", g)
	}
}

func TestResolveWindow(t *testing.T) {
	now := mustTime(t, "2026-11-27T12:40:00Z")
	last := mustTime(t, "2026-11-27T12:00:00Z")
	earliest := last.Add(-167 * time.Hour)
	cases := []struct {
		name     string
		w        Window
		wm       time.Time
		from, to time.Time
		wantErr  bool
	}{
		{name: "no watermark: lookback before the last complete hour", from: last.Add(-48 * time.Hour), to: last},
		{name: "watermark minus lookback", wm: last.Add(-3 * time.Hour), from: last.Add(-51 * time.Hour), to: last},
		{name: "stale watermark clamps to Neon's window", wm: last.Add(-400 * time.Hour), from: earliest, to: last},
		{name: "explicit window", w: Window{From: last.Add(-10*time.Hour + 30*time.Minute), To: last.Add(-2 * time.Hour)}, from: last.Add(-10 * time.Hour), to: last.Add(-2 * time.Hour)},
		{name: "explicit start too old", w: Window{From: last.Add(-200 * time.Hour)}, wantErr: true},
		{name: "end in the future", w: Window{To: last.Add(2 * time.Hour)}, wantErr: true},
		{name: "empty", w: Window{From: last.Add(-2 * time.Hour), To: last.Add(-2 * time.Hour)}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from, to, err := ResolveWindow(tc.w, now, tc.wm, !tc.wm.IsZero(), 48*time.Hour)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got [%v, %v)", from, to)
				}
				return
			}
			if err != nil || !from.Equal(tc.from) || !to.Equal(tc.to) {
				t.Fatalf("got [%v, %v) %v, want [%v, %v)", from, to, err, tc.from, tc.to)
			}
		})
	}
}
