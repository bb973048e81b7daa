package billing

import (
	"context"
	"fmt"
	"sort"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/plans"
)

// MeterSetup is one meter the catalog names.
type MeterSetup struct {
	EventName string
	// MeterID is the existing (or created) meter's id; empty when missing in a dry run.
	MeterID string
	// Created is set when this run created the meter.
	Created bool
}

// MeterEventNames returns the meter event names the catalog bills to, sorted.
func MeterEventNames(cat *plans.Catalog) []string {
	seen := map[string]bool{}
	for _, p := range cat.Plans {
		for _, b := range p.Billing {
			if b.MeterEventName != "" {
				seen[b.MeterEventName] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Meters returns the active meters by event name.
func Meters(ctx context.Context, sc *client.API) (map[string]string, error) {
	out := map[string]string{}
	p := &stripe.BillingMeterListParams{Status: stripe.String("active")}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := sc.BillingMeters.List(p)
	for it.Next() {
		m := it.BillingMeter()
		out[m.EventName] = m.ID
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list meters: %w", err)
	}
	return out, nil
}

// Setup makes sure an active meter exists for every event name of the catalog: sum of the
// payload's value, pre-aggregated per hour (the newest event of a customer's hour replaces
// the earlier ones), customer by stripe_customer_id. It creates only what is missing, so it
// is safe to repeat; apply=false only reports. The creation's Idempotency-Key derives from
// the event name, so a retried creation cannot make two meters.
func Setup(ctx context.Context, sc *client.API, cat *plans.Catalog, apply bool) ([]MeterSetup, error) {
	have, err := Meters(ctx, sc)
	if err != nil {
		return nil, err
	}
	var out []MeterSetup
	for _, name := range MeterEventNames(cat) {
		if id, ok := have[name]; ok {
			out = append(out, MeterSetup{EventName: name, MeterID: id})
			continue
		}
		if !apply {
			out = append(out, MeterSetup{EventName: name})
			continue
		}
		p := &stripe.BillingMeterParams{
			DisplayName:        stripe.String("neonmeter " + name),
			EventName:          stripe.String(name),
			DefaultAggregation: &stripe.BillingMeterDefaultAggregationParams{Formula: stripe.String("sum")},
			EventTimeWindow:    stripe.String("hour"),
			CustomerMapping:    &stripe.BillingMeterCustomerMappingParams{EventPayloadKey: stripe.String("stripe_customer_id"), Type: stripe.String("by_id")},
			ValueSettings:      &stripe.BillingMeterValueSettingsParams{EventPayloadKey: stripe.String("value")},
		}
		p.Context = ctx
		p.SetIdempotencyKey("neonmeter-meter-" + name)
		m, err := sc.BillingMeters.New(p)
		if err != nil {
			return out, fmt.Errorf("create meter %s: %w", name, err)
		}
		out = append(out, MeterSetup{EventName: name, MeterID: m.ID, Created: true})
	}
	return out, nil
}
