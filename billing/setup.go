package billing

import (
	"context"
	"fmt"
	"maps"
	"slices"

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
	return slices.Sorted(maps.Keys(seen))
}

func activeMeters(ctx context.Context, sc *client.API) (map[string]*stripe.BillingMeter, error) {
	out := map[string]*stripe.BillingMeter{}
	err := listPages(func(after *string) ([]string, bool, error) {
		p := &stripe.BillingMeterListParams{Status: stripe.String("active")}
		p.Context, p.Limit, p.Single, p.StartingAfter = ctx, stripe.Int64(100), true, after
		it := sc.BillingMeters.List(p)
		var ids []string
		for it.Next() {
			m := it.BillingMeter()
			ids = append(ids, m.ID)
			out[m.EventName] = m
		}
		return ids, it.Meta() != nil && it.Meta().HasMore, it.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list meters: %w", err)
	}
	return out, nil
}

// meterMismatch says why an existing meter cannot take billing's events, or "". Pushes
// replace an hour's value, which only an hourly pre-aggregated sum does: any other meter would
// add a revision to the value it replaces and bill the hour twice.
func meterMismatch(m *stripe.BillingMeter) string {
	switch {
	case m.EventTimeWindow != stripe.BillingMeterEventTimeWindowHour:
		return fmt.Sprintf("event_time_window %q, want hour", m.EventTimeWindow)
	case m.DefaultAggregation == nil || m.DefaultAggregation.Formula != stripe.BillingMeterDefaultAggregationFormulaSum:
		return "aggregation is not sum"
	case m.CustomerMapping == nil || m.CustomerMapping.EventPayloadKey != "stripe_customer_id":
		return "customer payload key is not stripe_customer_id"
	case m.ValueSettings == nil || m.ValueSettings.EventPayloadKey != "value":
		return "value payload key is not value"
	}
	return ""
}

// Setup makes sure an active meter exists for every event name of the catalog: sum of the
// payload's value, pre-aggregated per hour (the newest event of a customer's hour replaces
// the earlier ones), customer by stripe_customer_id. It creates only what is missing, so it
// is safe to repeat; apply=false only reports. The creation's Idempotency-Key derives from
// the event name, so a retried creation cannot make two meters.
func Setup(ctx context.Context, sc *client.API, cat *plans.Catalog, apply bool) ([]MeterSetup, error) {
	have, err := activeMeters(ctx, sc)
	if err != nil {
		return nil, err
	}
	var out []MeterSetup
	for _, name := range MeterEventNames(cat) {
		if m, ok := have[name]; ok {
			if why := meterMismatch(m); why != "" {
				return out, fmt.Errorf("meter %s (%s) cannot replace hourly values: %s; deactivate it or rename the catalog's meter", m.ID, name, why)
			}
			out = append(out, MeterSetup{EventName: name, MeterID: m.ID})
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
