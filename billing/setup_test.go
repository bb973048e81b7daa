package billing_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/stripefake"
)

// TestSetup_RefusesMeterThatWouldAdd: a meter with the catalog's event name that is not an
// hourly pre-aggregated sum (here a raw meter) adds every event instead of replacing the hour,
// so each revision would bill the hour again. Setup must refuse it, not adopt it.
func TestSetup_RefusesMeterThatWouldAdd(t *testing.T) {
	fake := stripefake.New(stripefake.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: srv.URL})
	if _, err := sc.BillingMeters.New(&stripe.BillingMeterParams{DisplayName: stripe.String("raw"), EventName: stripe.String("neon_compute"),
		DefaultAggregation: &stripe.BillingMeterDefaultAggregationParams{Formula: stripe.String("sum")}}); err != nil {
		t.Fatal(err)
	}
	cat := testCatalog(t)
	for _, apply := range []bool{false, true} {
		if got, err := billing.Setup(context.Background(), sc, cat, apply); err == nil {
			t.Fatalf("setup (apply %v) adopted a raw meter for neon_compute: %+v", apply, got)
		}
	}
}

// TestStripeSink_NewSubscriptionItem: the sink caches each customer's subscription item of a
// legacy price; when the customer's subscription is replaced (a plan change), the stale item
// refuses usage records. The sink must look the item up again instead of failing every later
// revision for the sink's whole life.
func TestStripeSink_NewSubscriptionItem(t *testing.T) {
	fake := stripefake.New(stripefake.Options{})
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	fake.SetNow(start.Add(48 * time.Hour))
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	sc := accounts.NewStripeClient(accounts.StripeOptions{Key: "sk_test_fake", URL: srv.URL})
	cus, err := sc.Customers.New(&stripe.CustomerParams{Name: stripe.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	price, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), ProductData: &stripe.PriceProductDataParams{Name: stripe.String("w")},
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"), UsageType: stripe.String("metered"), AggregateUsage: stripe.String("sum")}})
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func() *stripe.Subscription {
		sub, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}},
			BackdateStartDate: stripe.Int64(start.Unix())})
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	old := subscribe()
	sink := billing.NewStripeSink(sc)
	send := func(rev uint32, h time.Time) error {
		k := billing.Key{CustomerID: cus.ID, Target: price.ID, Sink: billing.SinkUsageRecord, Hour: h}
		_, err := sink.Send(context.Background(), billing.Action{Kind: billing.ActionSend, Value: billing.Value{Key: k, Units: 3}, Revision: rev, Identifier: billing.Identifier(k, rev)})
		return err
	}
	if err := send(1, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Subscriptions.Cancel(old.ID, nil); err != nil {
		t.Fatal(err)
	}
	cur := subscribe()
	var errs []error
	for rev := uint32(1); rev <= 3; rev++ {
		if err := send(rev, start.Add(2*time.Hour)); err != nil {
			errs = append(errs, err)
			continue
		}
		if got := fake.UsageRecords()[cur.Items.Data[0].ID][start.Add(2*time.Hour)]; got != 3 {
			t.Fatalf("the new subscription item holds %d, want 3", got)
		}
		return
	}
	t.Fatalf("every revision went to the canceled subscription's item: %v", errs)
}
