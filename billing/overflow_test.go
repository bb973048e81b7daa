package billing_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
)

// TestDesired_OverflowNamesCustomerMetricHour: usage near int64 max must never become a wrapped
// (negative or tiny) value. Two projects of one customer in one hour, or one project over two
// hours of a period, pass what billing can hold: Desired returns an *OverflowError naming the
// customer, target, metric and hour; the largest sums that fit still convert.
func TestDesired_OverflowNamesCustomerMetricHour(t *testing.T) {
	cat := testCatalog(t)
	tl := accounts.NewTimelines([]accounts.Record{
		{ProjectID: "p1", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"},
		{ProjectID: "p2", ValidFrom: h0.AddDate(0, -1, 0), CustomerID: "cus_a", Plan: "pro"},
	}, "free")
	big := uint64(math.MaxInt64 - 1000)
	u := func(p string, h int, v uint64) billing.HourlyUsage {
		return billing.HourlyUsage{ProjectID: p, Metric: "written_data_bytes", Hour: hr(h), Value: v}
	}
	cases := []struct {
		name  string
		usage []billing.HourlyUsage
		what  string
		hour  time.Time
	}{
		{"two projects in one hour", []billing.HourlyUsage{u("p1", 1, big), u("p2", 1, big)}, "hourly usage", hr(1)},
		{"one value beyond int64", []billing.HourlyUsage{u("p1", 1, math.MaxUint64)}, "hourly usage", hr(1)},
		{"running total over two hours", []billing.HourlyUsage{u("p1", 0, big), u("p1", 2, big)}, "running total", hr(2)},
		{"before the window", []billing.HourlyUsage{u("p1", -3, big), u("p1", 1, 5000)}, "running total", hr(1)},
	}
	for _, tc := range cases {
		vals, err := billing.Desired(tc.usage, tl, cat, hr(0), hr(4))
		var oe *billing.OverflowError
		if !errors.As(err, &oe) || oe.What != tc.what || oe.CustomerID != "cus_a" || oe.Target != "price_written" ||
			oe.Metric != "written_data_bytes" || !oe.Hour.Equal(tc.hour) {
			t.Errorf("%s: values %+v, err %v; want an overflow of %s at %s", tc.name, vals, err, tc.what, tc.hour)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "cus_a") || !strings.Contains(msg, tc.hour.Format(time.RFC3339)) {
			t.Errorf("%s: message %q names neither customer nor hour", tc.name, msg)
		}
	}
	vals, err := billing.Desired([]billing.HourlyUsage{u("p1", 0, math.MaxInt64)}, tl, cat, hr(0), hr(4))
	if err != nil || len(vals) != 1 || vals[0].Units != math.MaxInt64/1_000_000_000 {
		t.Fatalf("the largest total that fits: %+v, err %v", vals, err)
	}
}

// TestExpectedAndCompare_Overflow: sums of Stripe's and the ledger's values per usage-record
// period, and their differences, are checked too.
func TestExpectedAndCompare_Overflow(t *testing.T) {
	k := billing.Key{CustomerID: "cus_a", Target: "price_written", Sink: billing.SinkUsageRecord, Hour: hr(1)}
	k2 := k
	k2.Hour = hr(2)
	_, err := billing.Expected([]billing.Value{{Key: k, Units: math.MaxInt64}, {Key: k2, Units: 1}}, nil)
	var oe *billing.OverflowError
	if !errors.As(err, &oe) || oe.What != "expected value" || oe.CustomerID != "cus_a" {
		t.Fatalf("expected period sum past int64: err %v", err)
	}
	b := billing.Bucket{CustomerID: "cus_a", Target: "neon_compute", Sink: billing.SinkMeter, Start: hr(1)}
	if _, err := billing.Compare(map[billing.Bucket]int64{b: math.MaxInt64}, map[billing.Bucket]int64{b: -5}); !errors.As(err, &oe) || oe.What != "drift" {
		t.Fatalf("drift past int64: err %v", err)
	}
	got, err := billing.Compare(map[billing.Bucket]int64{b: 10}, map[billing.Bucket]int64{b: 4})
	if err != nil || len(got) != 1 || got[0].Drift() != -6 {
		t.Fatalf("ordinary drift: %+v, err %v", got, err)
	}
}
