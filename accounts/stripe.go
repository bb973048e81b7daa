package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// StripeOptions configure NewStripeClient.
type StripeOptions struct {
	// Key is the secret API key. It is handed to stripe-go only, which sends it as a bearer
	// token; it never reaches logs, errors or metrics.
	Key string
	// URL is the API base URL; empty means Stripe's own (set it for stripe-mock or a fake).
	URL string
	// HTTPClient is used for every request; nil means one with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one request when HTTPClient is nil; zero means 30 s.
	Timeout time.Duration
	// Logger receives stripe-go's own messages at debug level; nil discards them.
	Logger *slog.Logger
}

// NewStripeClient returns a Stripe client with its own backend, so that nothing goes through
// stripe-go's process-wide default backend (its package-level functions would ignore this
// configuration and call api.stripe.com). stripe-go's own retries are off: callers retry with
// their own backoff, which also covers the plain 429s stripe-go does not retry.
func NewStripeClient(o StripeOptions) *client.API {
	hc := o.HTTPClient
	if hc == nil {
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		hc = &http.Client{Timeout: timeout}
	}
	cfg := &stripe.BackendConfig{
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     stripeLogger{log: o.Logger},
		EnableTelemetry:   stripe.Bool(false),
	}
	if o.URL != "" {
		cfg.URL = stripe.String(o.URL)
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	return client.New(o.Key, &stripe.Backends{API: b, Connect: b, Uploads: b})
}

// stripeLogger forwards stripe-go's messages to slog at debug level: they describe requests
// the sync logs itself, and must never be able to print at a level that ships by default.
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) emit(format string, v ...any) {
	if l.log != nil {
		l.log.Debug(fmt.Sprintf(format, v...), keyComponent, "stripe-go")
	}
}
func (l stripeLogger) Debugf(format string, v ...any) { l.emit(format, v...) }
func (l stripeLogger) Infof(format string, v ...any)  { l.emit(format, v...) }
func (l stripeLogger) Warnf(format string, v ...any)  { l.emit(format, v...) }
func (l stripeLogger) Errorf(format string, v ...any) { l.emit(format, v...) }

// Retry bounds for Stripe list pages.
const (
	DefaultRetryBase   = 500 * time.Millisecond
	DefaultRetryMax    = 20 * time.Second
	DefaultMaxAttempts = 6
	pageLimit          = 100
	maxPages           = 1_000_000
)

// retryable reports whether a failed Stripe call may succeed when repeated: rate limits,
// conflicts, server errors and network failures; not bad requests or bad keys.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		return se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode == http.StatusConflict || se.HTTPStatusCode >= 500
	}
	return true
}

// Retry bounds the retries of one Stripe list page.
type Retry struct {
	// Base is the first backoff; zero means DefaultRetryBase. Each retry doubles it, up to Max
	// (zero: DefaultRetryMax), and waits a random time up to that (full jitter).
	Base, Max time.Duration
	// MaxAttempts counts the first try; zero means DefaultMaxAttempts.
	MaxAttempts int
	// OnRetry, if set, is told of each retried failure (object is the list, like "customers").
	OnRetry func(object string, err error)
}

func (p Retry) withDefaults() Retry {
	if p.Base <= 0 {
		p.Base = DefaultRetryBase
	}
	if p.Max <= 0 {
		p.Max = DefaultRetryMax
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	return p
}

// all pages through a list: page fetches one page after startingAfter (nil: the first) and
// returns its objects' ids with has_more. Each page is retried on retryable errors with
// exponential backoff and full jitter; the loop stops at has_more=false and refuses a page
// that makes no progress.
func (p Retry) all(ctx context.Context, object string, page func(startingAfter *string) (ids []string, hasMore bool, err error)) error {
	var after *string
	seen := map[string]bool{}
	for n := 0; ; n++ {
		if n >= maxPages {
			return fmt.Errorf("list %s: more than %d pages", object, maxPages)
		}
		var (
			ids     []string
			hasMore bool
			err     error
		)
		for attempt := 1; ; attempt++ {
			ids, hasMore, err = page(after)
			if err == nil {
				break
			}
			if !retryable(err) || attempt >= p.MaxAttempts {
				return fmt.Errorf("list %s page %d (attempt %d): %w", object, n+1, attempt, err)
			}
			if p.OnRetry != nil {
				p.OnRetry(object, err)
			}
			if err := sleep(ctx, backoff(p.Base, p.Max, attempt)); err != nil {
				return fmt.Errorf("list %s page %d: %w", object, n+1, err)
			}
		}
		if !hasMore {
			return nil
		}
		if len(ids) == 0 || seen[ids[len(ids)-1]] {
			return fmt.Errorf("list %s page %d: has_more without new objects", object, n+1)
		}
		seen[ids[len(ids)-1]] = true
		last := ids[len(ids)-1]
		after = &last
	}
}

// backoff returns a random wait in [0, min(max, base·2^(attempt−1))] (full jitter).
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 20)
	if d > max || d <= 0 {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// listParams is one page of a list: at most pageLimit objects after startingAfter.
func listParams(ctx context.Context, startingAfter *string) stripe.ListParams {
	return stripe.ListParams{Context: ctx, Limit: stripe.Int64(pageLimit), Single: true, StartingAfter: startingAfter}
}

// FetchSnapshot reads every customer, every subscription (all statuses, so canceled ones give
// their ended_at) and every product (for neonmeter_plan metadata) from Stripe, 100 per page.
func FetchSnapshot(ctx context.Context, sc *client.API, retry Retry) (Snapshot, error) {
	p := retry.withDefaults()
	snap := Snapshot{ProductPlans: map[string]string{}}
	err := p.all(ctx, "customers", func(after *string) ([]string, bool, error) {
		it := sc.Customers.List(&stripe.CustomerListParams{ListParams: listParams(ctx, after)})
		var ids []string
		var page []Customer
		for it.Next() {
			c := it.Customer()
			ids = append(ids, c.ID)
			page = append(page, Customer{ID: c.ID, Created: unix(c.Created), ProjectsMetadata: c.Metadata[MetadataProjectKey]})
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		snap.Customers = append(snap.Customers, page...)
		return ids, it.Meta().HasMore, nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	var more []int // subscriptions whose embedded item list is incomplete
	err = p.all(ctx, "subscriptions", func(after *string) ([]string, bool, error) {
		it := sc.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: listParams(ctx, after), Status: stripe.String("all")})
		var ids []string
		var page []Subscription
		var pageMore []int
		for it.Next() {
			s := it.Subscription()
			ids = append(ids, s.ID)
			sub := Subscription{ID: s.ID, Status: string(s.Status), Created: unix(s.Created), Start: unix(s.StartDate), EndedAt: unix(s.EndedAt)}
			if s.Customer != nil {
				sub.CustomerID = s.Customer.ID
			}
			if s.Items != nil {
				for _, si := range s.Items.Data {
					sub.Items = append(sub.Items, item(si))
				}
				if s.Items.HasMore {
					pageMore = append(pageMore, len(snap.Subscriptions)+len(page))
				}
			}
			page = append(page, sub)
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		snap.Subscriptions = append(snap.Subscriptions, page...)
		more = append(more, pageMore...)
		return ids, it.Meta().HasMore, nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	for _, i := range more {
		sub := &snap.Subscriptions[i]
		sub.Items = nil
		err := p.all(ctx, "subscription_items", func(after *string) ([]string, bool, error) {
			it := sc.SubscriptionItems.List(&stripe.SubscriptionItemListParams{ListParams: listParams(ctx, after), Subscription: stripe.String(sub.ID)})
			var ids []string
			var page []Item
			for it.Next() {
				ids = append(ids, it.SubscriptionItem().ID)
				page = append(page, item(it.SubscriptionItem()))
			}
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			sub.Items = append(sub.Items, page...)
			return ids, it.Meta().HasMore, nil
		})
		if err != nil {
			return Snapshot{}, fmt.Errorf("subscription %s: %w", sub.ID, err)
		}
	}
	err = p.all(ctx, "products", func(after *string) ([]string, bool, error) {
		it := sc.Products.List(&stripe.ProductListParams{ListParams: listParams(ctx, after)})
		var ids []string
		plans := map[string]string{}
		for it.Next() {
			pr := it.Product()
			ids = append(ids, pr.ID)
			if name := pr.Metadata[MetadataPlanKey]; name != "" {
				plans[pr.ID] = name
			}
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		for k, v := range plans {
			snap.ProductPlans[k] = v
		}
		return ids, it.Meta().HasMore, nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}

func item(si *stripe.SubscriptionItem) Item {
	it := Item{ID: si.ID, Created: unix(si.Created)}
	if si.Price != nil {
		it.PriceID, it.LookupKey = si.Price.ID, si.Price.LookupKey
		if si.Price.Product != nil {
			it.ProductID = si.Price.Product.ID
		}
	}
	return it
}

// unix turns a Stripe timestamp into UTC time; 0 (unset) stays the zero time.
func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
