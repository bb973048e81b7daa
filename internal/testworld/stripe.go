package testworld

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/billing"
	billingstore "github.com/neonmeter/neonmeter/billing/chstore"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/plans"
)

// Stripe is the recording fake Stripe served over HTTP, and a client of it.
type Stripe struct {
	Fake   *stripefake.Server
	URL    string
	Client *client.API
}

// FakeKey is the key the client presents; the fake accepts any test key unless told one.
const FakeKey = "sk_test_fake"

// NewStripe serves a fake Stripe, its clock standing at now (the fake's own start when zero),
// until the test ends.
func NewStripe(t testing.TB, now time.Time) *Stripe {
	fake := stripefake.New(stripefake.Options{})
	if !now.IsZero() {
		fake.SetNow(now)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &Stripe{Fake: fake, URL: srv.URL, Client: accounts.NewStripeClient(accounts.StripeOptions{Key: FakeKey, URL: srv.URL})}
}

// Setup creates the catalog's meters in the fake (and checks its prices), as `neonmeter billing
// setup --apply` does.
func (s *Stripe) Setup(t testing.TB, cat *plans.Catalog) {
	t.Helper()
	if _, err := billing.Setup(context.Background(), s.Client, cat, true); err != nil {
		t.Fatal(err)
	}
}

// Customer creates a customer (named, unless name is empty) and returns its id.
func (s *Stripe) Customer(t testing.TB, name string) string {
	t.Helper()
	p := &stripe.CustomerParams{}
	if name != "" {
		p.Name = stripe.String(name)
	}
	c, err := s.Client.Customers.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// MeteredPrice creates a legacy metered price (summed usage records, one cent a unit, monthly)
// with a product named product, and returns its id.
func (s *Stripe) MeteredPrice(t testing.TB, product string) string {
	t.Helper()
	p, err := s.Client.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String(product)},
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"), UsageType: stripe.String("metered"),
			AggregateUsage: stripe.String("sum")}})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// Subscribe subscribes customer to prices, starting at start.
func (s *Stripe) Subscribe(t testing.TB, customer string, start time.Time, prices ...string) *stripe.Subscription {
	t.Helper()
	var items []*stripe.SubscriptionItemsParams
	for _, p := range prices {
		items = append(items, &stripe.SubscriptionItemsParams{Price: stripe.String(p)})
	}
	sub, err := s.Client.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(customer), Items: items,
		BackdateStartDate: stripe.Int64(start.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// PusherConfig is billing's configuration against this fake at test speed (no pacing to speak
// of, millisecond retries, reconcile comparing at once), on database db.
func (s *Stripe) PusherConfig(conn driver.Conn, db string, cat *plans.Catalog, now func() time.Time) billing.Config {
	return billing.Config{Sink: billing.NewStripeSink(s.Client), Store: billingstore.New(conn, db), Accounts: accountsstore.New(conn, db),
		Catalog: cat, DefaultPlan: "free", Lookback: 72 * time.Hour, Provisional: 2 * time.Hour, Rate: 1e6, Concurrency: 8,
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, MaxAttempts: 30, Now: now, SummarySettle: -1}
}

// Pusher builds a pusher of cfg.
func Pusher(t testing.TB, cfg billing.Config) *billing.Pusher {
	t.Helper()
	p, err := billing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// PushWindow is the hours a push with PusherConfig's settings covers at now: from 72 h back to
// the 2 h Neon may still revise.
func PushWindow(now time.Time) (from, to time.Time) {
	return now.Add(-72 * time.Hour).Truncate(time.Hour), now.Add(-2 * time.Hour).Truncate(time.Hour)
}

// MeterHolds is what the fake's meters hold per (customer, event name, hour), zeros left out.
func (s *Stripe) MeterHolds() map[Cell]int64 {
	out := map[Cell]int64{}
	for _, name := range s.Fake.MeterEventNames() {
		for cus, hours := range s.Fake.MeterWindows(name) {
			for h, v := range hours {
				if v.Value != 0 {
					out[Cell{cus, name, h}] = v.Value
				}
			}
		}
	}
	return out
}
