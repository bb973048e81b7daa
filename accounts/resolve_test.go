package accounts_test

import (
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
)

func TestTimelines_HourRule(t *testing.T) {
	history := []accounts.Record{
		// Listed out of order on purpose.
		stored("p-a", h(14), "cus_1", "pro"),
		stored("p-a", h(-48), "cus_1", "free"),
		stored("p-b", h(14), "cus_2", "enterprise"), // moved to 14:20 below
		stored("p-c", h(2), "cus_3", ""),
		stored("p-d", h(1), "cus_4", "pro"),
		stored("p-d", h(9), "", ""),
	}
	history[2].ValidFrom = h(14).Add(20 * time.Minute)
	tl := accounts.NewTimelines(history, "free")
	tests := []struct {
		project string
		hour    time.Time
		want    accounts.Assignment
	}{
		{"p-a", h(13), accounts.Assignment{ProjectID: "p-a", CustomerID: "cus_1", Plan: "free", Since: h(-48)}},
		// An upgrade at 14:00:00 owns the 14:00 bucket.
		{"p-a", h(14), accounts.Assignment{ProjectID: "p-a", CustomerID: "cus_1", Plan: "pro", Since: h(14)}},
		{"p-a", h(15), accounts.Assignment{ProjectID: "p-a", CustomerID: "cus_1", Plan: "pro", Since: h(14)}},
		// A change at 14:20 takes effect from the 15:00 bucket.
		{"p-b", h(14), accounts.Assignment{ProjectID: "p-b", Plan: "free", Default: true}},
		{"p-b", h(15), accounts.Assignment{ProjectID: "p-b", CustomerID: "cus_2", Plan: "enterprise", Since: h(14).Add(20 * time.Minute)}},
		// A customer without a plan in force gets the default plan but stays the payer.
		{"p-c", h(3), accounts.Assignment{ProjectID: "p-c", CustomerID: "cus_3", Plan: "free", Default: true, Since: h(2)}},
		// Unowned again after 09:00.
		{"p-d", h(8), accounts.Assignment{ProjectID: "p-d", CustomerID: "cus_4", Plan: "pro", Since: h(1)}},
		{"p-d", h(9), accounts.Assignment{ProjectID: "p-d", Plan: "free", Default: true, Since: h(9)}},
		{"p-never", h(9), accounts.Assignment{ProjectID: "p-never", Plan: "free", Default: true}},
	}
	for _, tt := range tests {
		if got := tl.At(tt.project, tt.hour); got != tt.want {
			t.Errorf("%s at %s = %+v\nwant %+v", tt.project, tt.hour.Format(time.RFC3339), got, tt.want)
		}
	}
	hours := tl.Hours("p-a", h(12).Add(30*time.Minute), h(16))
	if len(hours) != 4 || hours[0].Plan != "free" || hours[1].Plan != "free" || hours[2].Plan != "pro" || hours[3].Plan != "pro" {
		t.Fatalf("hours 12..15 = %+v", hours)
	}
	if got := tl.Projects(); len(got) != 4 || got[0] != "p-a" {
		t.Fatalf("projects = %v", got)
	}
	if !tl.At("p-b", h(15)).Mapped() || tl.At("p-b", h(14)).Mapped() {
		t.Fatalf("Mapped wrong")
	}
}
