package plans_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/plans"
)

func TestPeriod_IsTheUTCCalendarMonth(t *testing.T) {
	east := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		at         time.Time
		start, end time.Time
	}{
		{time.Date(2026, 11, 27, 12, 40, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		// 1 December 01:00 at UTC+2 is still November in UTC.
		{time.Date(2026, 12, 1, 1, 0, 0, 0, east), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := plans.PeriodStart(tt.at); !got.Equal(tt.start) || got.Location() != time.UTC {
			t.Errorf("PeriodStart(%v) = %v, want %v", tt.at, got, tt.start)
		}
		if got := plans.PeriodEnd(tt.at); !got.Equal(tt.end) {
			t.Errorf("PeriodEnd(%v) = %v, want %v", tt.at, got, tt.end)
		}
	}
}
