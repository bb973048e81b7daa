package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/neonmeter/neonmeter/billing"
	"github.com/neonmeter/neonmeter/internal/testworld"
)

// TestSetup_RefusesMeterThatWouldAdd: a meter with the catalog's event name that is not an
// hourly pre-aggregated sum (here a raw meter) adds every event instead of replacing the hour,
// so each revision would bill the hour again. Setup must refuse it, not adopt it.
func TestSetup_RefusesMeterThatWouldAdd(t *testing.T) {
	sc := testworld.NewStripe(t, time.Time{}).Client
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
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	st := testworld.NewStripe(t, start.Add(48*time.Hour))
	cus, price := st.Customer(t, "c"), st.MeteredPrice(t, "w")
	old := st.Subscribe(t, cus, start, price)
	sink := billing.NewStripeSink(st.Client)
	send := func(rev uint32, h time.Time) error {
		k := billing.Key{CustomerID: cus, Target: price, Sink: billing.SinkUsageRecord, Hour: h}
		_, err := sink.Send(context.Background(), billing.Action{Kind: billing.ActionSend, Value: billing.Value{Key: k, Units: 3}, Revision: rev, Identifier: billing.Identifier(k, rev)})
		return err
	}
	if err := send(1, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client.Subscriptions.Cancel(old.ID, nil); err != nil {
		t.Fatal(err)
	}
	cur := st.Subscribe(t, cus, start, price)
	var errs []error
	for rev := uint32(1); rev <= 3; rev++ {
		if err := send(rev, start.Add(2*time.Hour)); err != nil {
			errs = append(errs, err)
			continue
		}
		if got := st.Fake.UsageRecords()[cur.Items.Data[0].ID][start.Add(2*time.Hour)]; got != 3 {
			t.Fatalf("the new subscription item holds %d, want 3", got)
		}
		return
	}
	t.Fatalf("every revision went to the canceled subscription's item: %v", errs)
}
