package billing_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/plans"
)

// TestSplitBeforeWindow_SameValuesAsEveryHour: reading the hours before the window as one sum
// per project (hourly only where the owner or plan changed) gives exactly what reading every
// hour since the period began gives, with plan changes, moves between customers and unowned
// stretches, for both roundings.
func TestSplitBeforeWindow_SameValuesAsEveryHour(t *testing.T) {
	cat, err := plans.Parse("split.yaml", []byte(`version: 1
plans:
  - name: free
  - name: pro
    billing:
      compute_unit_seconds: {meter: neon_compute, unit: CU-hour}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
  - name: max
    billing:
      compute_unit_seconds: {meter: neon_compute_max, unit: CU-hour}
`))
	if err != nil {
		t.Fatal(err)
	}
	readFrom := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	from := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	to := from.Add(72 * time.Hour)
	rng := rand.New(rand.NewPCG(3, 4))
	var history []accounts.Record
	var all []billing.HourlyUsage
	for i := 0; i < 60; i++ {
		p := fmt.Sprintf("p-%02d", i)
		cus := fmt.Sprintf("cus_%d", i%7)
		history = append(history, accounts.Record{ProjectID: p, CustomerID: cus, Plan: "pro", ValidFrom: readFrom.Add(-24 * time.Hour)})
		switch i % 4 {
		case 1: // upgraded before the window
			history = append(history, accounts.Record{ProjectID: p, CustomerID: cus, Plan: "max", ValidFrom: readFrom.Add(time.Duration(rng.IntN(500)) * time.Hour)})
		case 2: // moved to another customer, then unowned for a while, then back
			at := readFrom.Add(time.Duration(rng.IntN(300)) * time.Hour)
			history = append(history, accounts.Record{ProjectID: p, CustomerID: "cus_moved", Plan: "pro", ValidFrom: at},
				accounts.Record{ProjectID: p, ValidFrom: at.Add(40 * time.Hour)},
				accounts.Record{ProjectID: p, CustomerID: cus, Plan: "pro", ValidFrom: at.Add(90 * time.Hour)})
		case 3: // changed inside the window only
			history = append(history, accounts.Record{ProjectID: p, CustomerID: cus, Plan: "max", ValidFrom: from.Add(10 * time.Hour)})
		}
		for h := readFrom; h.Before(to); h = h.Add(time.Hour) {
			if rng.IntN(3) == 0 {
				continue
			}
			all = append(all,
				billing.HourlyUsage{ProjectID: p, Metric: "compute_unit_seconds", Hour: h, Value: uint64(rng.IntN(5000))},
				billing.HourlyUsage{ProjectID: p, Metric: "public_network_transfer_bytes", Hour: h, Value: uint64(rng.IntN(3e8))})
		}
	}
	tl := accounts.NewTimelines(history, "free")
	want := mustDesired(t, all, tl, cat, from, to)

	var window []billing.HourlyUsage
	sums := map[[2]string]uint64{}
	for _, u := range all {
		if u.Hour.Before(from) {
			sums[[2]string{u.ProjectID, u.Metric}] += u.Value
		} else {
			window = append(window, u)
		}
	}
	var before []billing.HourlyUsage
	for k, v := range sums {
		before = append(before, billing.HourlyUsage{ProjectID: k[0], Metric: k[1], Hour: readFrom, Value: v})
	}
	constant, changing := billing.SplitBeforeWindow(before, tl, readFrom, from)
	if len(changing) == 0 || len(constant) == 0 {
		t.Fatalf("the fleet must have both kinds: %d constant sums, %d changing projects", len(constant), len(changing))
	}
	isChanging := map[string]bool{}
	for _, p := range changing {
		isChanging[p] = true
	}
	usage := append(window, constant...)
	for _, u := range all {
		if u.Hour.Before(from) && isChanging[u.ProjectID] {
			usage = append(usage, u)
		}
	}
	got := mustDesired(t, usage, tl, cat, from, to)
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("desired values differ: %d from sums, %d from every hour", len(got), len(want))
	}
}
