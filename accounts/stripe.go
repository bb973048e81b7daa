package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/retry"
)

// StripeOptions configure NewStripeClient.
type StripeOptions struct {
	// Key is the secret API key. It is handed to stripe-go only, which sends it as a bearer
	// token; it never reaches logs, errors or metrics: every response body is stripped of it
	// (and of Redactor's secrets) before stripe-go decodes it into an error.
	Key string
	// Redactor, when set, removes further secrets (the other configured keys) from response
	// bodies and stripe-go's log lines; Key is always removed.
	Redactor *redact.Redactor
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
//
// Redaction sits at the transport, below stripe-go: an upstream that echoes the Authorization
// header cannot put the key into a *stripe.Error, so billing and accounts log, store and
// classify Stripe errors without handling secrets themselves.
// maxIdleStripeConns bounds the idle connections kept to Stripe: above the largest sensible
// billing concurrency.
const maxIdleStripeConns = 256

func NewStripeClient(o StripeOptions) *client.API {
	red := stripeRedactor(o)
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		hc.Timeout = o.Timeout
		if hc.Timeout <= 0 {
			hc.Timeout = 30 * time.Second
		}
		// Billing keeps up to NEONMETER_BILLING_CONCURRENCY requests in flight to one host; Go's
		// default of 2 idle connections per host would open a new TLS connection for most.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = maxIdleStripeConns
		hc.Transport = t
	}
	hc.Transport = red.Transport(hc.Transport)
	cfg := &stripe.BackendConfig{
		HTTPClient:        &hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     stripeLogger{log: o.Logger, red: red},
		EnableTelemetry:   stripe.Bool(false),
	}
	if o.URL != "" {
		cfg.URL = stripe.String(o.URL)
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	return client.New(o.Key, &stripe.Backends{API: b, Connect: b, Uploads: b})
}

// stripeRedactor removes the client's key and the options' other secrets.
func stripeRedactor(o StripeOptions) *redact.Redactor {
	return o.Redactor.With(o.Key)
}

// stripeLogger forwards stripe-go's messages to slog at debug level: they describe requests
// the sync logs itself, and must never be able to print at a level that ships by default.
type stripeLogger struct {
	log *slog.Logger
	red *redact.Redactor
}

func (l stripeLogger) emit(format string, v ...any) {
	if l.log != nil {
		l.log.Debug(l.red.String(fmt.Sprintf(format, v...)), logkey.Component, "stripe-go")
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
	// Backoff is the wait before each retry; a zero Min or Max means DefaultRetryBase or
	// DefaultRetryMax.
	Backoff retry.Backoff
	// MaxAttempts counts the first try; zero means DefaultMaxAttempts.
	MaxAttempts int
	// OnRetry, if set, is told of each retried failure (object is the list, like "customers").
	OnRetry func(object string, err error)
}

func (p Retry) withDefaults() Retry {
	if p.Backoff.Min <= 0 {
		p.Backoff.Min = DefaultRetryBase
	}
	if p.Backoff.Max <= 0 {
		p.Backoff.Max = DefaultRetryMax
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	return p
}

// pageFunc fetches one page of a list after startingAfter (nil: the first) and returns its
// objects' ids with has_more.
type pageFunc func(startingAfter *string) (ids []string, hasMore bool, err error)

// all pages through a list, each page retried (see page); the loop stops at has_more=false
// and refuses a page that makes no progress.
func (p Retry) all(ctx context.Context, object string, fetch pageFunc) error {
	var after *string
	seen := map[string]bool{}
	for n := 1; ; n++ {
		if n > maxPages {
			return fmt.Errorf("list %s: more than %d pages", object, maxPages)
		}
		ids, hasMore, err := p.page(ctx, object, n, func() ([]string, bool, error) { return fetch(after) })
		if err != nil {
			return err
		}
		if !hasMore {
			return nil
		}
		if len(ids) == 0 || seen[ids[len(ids)-1]] {
			return fmt.Errorf("list %s page %d: has_more without new objects", object, n)
		}
		last := ids[len(ids)-1]
		seen[last] = true
		after = &last
	}
}

// page fetches page n of a list, retrying retryable errors with backoff up to MaxAttempts.
func (p Retry) page(ctx context.Context, object string, n int, fetch func() ([]string, bool, error)) ([]string, bool, error) {
	for attempt := 1; ; attempt++ {
		ids, hasMore, err := fetch()
		if err == nil {
			return ids, hasMore, nil
		}
		if !retryable(err) || attempt >= p.MaxAttempts {
			return nil, false, fmt.Errorf("list %s page %d (attempt %d): %w", object, n, attempt, err)
		}
		if p.OnRetry != nil {
			p.OnRetry(object, err)
		}
		if err := retry.Sleep(ctx, p.Backoff.Delay(attempt)); err != nil {
			return nil, false, fmt.Errorf("list %s page %d: %w", object, n, err)
		}
	}
}

// listParams is one page of a list: at most pageLimit objects after startingAfter.
func listParams(ctx context.Context, startingAfter *string) stripe.ListParams {
	return stripe.ListParams{Context: ctx, Limit: stripe.Int64(pageLimit), Single: true, StartingAfter: startingAfter}
}

// FetchSnapshot reads every customer, every subscription (all statuses, so canceled ones give
// their ended_at) and every product (for neonmeter_plan metadata) from Stripe, 100 per page.
func FetchSnapshot(ctx context.Context, sc *client.API, r Retry) (Snapshot, error) {
	f := fetcher{ctx: ctx, sc: sc, retry: r.withDefaults()}
	var (
		snap Snapshot
		err  error
	)
	if snap.Customers, err = f.customers(); err != nil {
		return Snapshot{}, err
	}
	if snap.Subscriptions, err = f.subscriptions(); err != nil {
		return Snapshot{}, err
	}
	if snap.ProductPlans, err = f.productPlans(); err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}

// fetcher reads one snapshot's lists.
type fetcher struct {
	ctx   context.Context
	sc    *client.API
	retry Retry
}

func (f fetcher) customers() ([]Customer, error) {
	var out []Customer
	err := f.retry.all(f.ctx, "customers", func(after *string) ([]string, bool, error) {
		it := f.sc.Customers.List(&stripe.CustomerListParams{ListParams: listParams(f.ctx, after)})
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
		out = append(out, page...)
		return ids, it.Meta().HasMore, nil
	})
	return out, err
}

// subscriptions lists subscriptions of every status, then lists the items of those whose
// embedded item list is incomplete.
func (f fetcher) subscriptions() ([]Subscription, error) {
	var (
		out  []Subscription
		more []int // indexes in out of subscriptions with more items than embedded
	)
	err := f.retry.all(f.ctx, "subscriptions", func(after *string) ([]string, bool, error) {
		it := f.sc.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: listParams(f.ctx, after), Status: stripe.String("all")})
		var ids []string
		var page []Subscription
		var pageMore []int
		for it.Next() {
			s := it.Subscription()
			ids = append(ids, s.ID)
			if s.Items != nil && s.Items.HasMore {
				pageMore = append(pageMore, len(out)+len(page))
			}
			page = append(page, subscription(s))
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		out = append(out, page...)
		more = append(more, pageMore...)
		return ids, it.Meta().HasMore, nil
	})
	if err != nil {
		return nil, err
	}
	for _, i := range more {
		if out[i].Items, err = f.items(out[i].ID); err != nil {
			return nil, fmt.Errorf("subscription %s: %w", out[i].ID, err)
		}
	}
	return out, nil
}

func subscription(s *stripe.Subscription) Subscription {
	sub := Subscription{ID: s.ID, Status: string(s.Status), Created: unix(s.Created), Start: unix(s.StartDate), EndedAt: unix(s.EndedAt)}
	if s.Customer != nil {
		sub.CustomerID = s.Customer.ID
	}
	if s.Items != nil {
		for _, si := range s.Items.Data {
			sub.Items = append(sub.Items, item(si))
		}
	}
	return sub
}

// items lists every item of one subscription.
func (f fetcher) items(subID string) ([]Item, error) {
	var out []Item
	err := f.retry.all(f.ctx, "subscription_items", func(after *string) ([]string, bool, error) {
		it := f.sc.SubscriptionItems.List(&stripe.SubscriptionItemListParams{ListParams: listParams(f.ctx, after), Subscription: stripe.String(subID)})
		var ids []string
		var page []Item
		for it.Next() {
			ids = append(ids, it.SubscriptionItem().ID)
			page = append(page, item(it.SubscriptionItem()))
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		out = append(out, page...)
		return ids, it.Meta().HasMore, nil
	})
	return out, err
}

// productPlans maps product ids to their metadata neonmeter_plan, when set.
func (f fetcher) productPlans() (map[string]string, error) {
	out := map[string]string{}
	err := f.retry.all(f.ctx, "products", func(after *string) ([]string, bool, error) {
		it := f.sc.Products.List(&stripe.ProductListParams{ListParams: listParams(f.ctx, after)})
		var ids []string
		page := map[string]string{}
		for it.Next() {
			pr := it.Product()
			ids = append(ids, pr.ID)
			if name := pr.Metadata[MetadataPlanKey]; name != "" {
				page[pr.ID] = name
			}
		}
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		maps.Copy(out, page)
		return ids, it.Meta().HasMore, nil
	})
	return out, err
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
