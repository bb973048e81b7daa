package stripefake_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/neonmeter/neonmeter/internal/stripefake"
)

const testKey = "sk_test_fakekey1234"

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func start(t *testing.T) (*stripefake.Server, *httptest.Server, *client.API) {
	t.Helper()
	fake := stripefake.New(stripefake.Options{APIKey: testKey})
	fake.SetNow(t0)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv, newClient(srv, testKey)
}

func newClient(srv *httptest.Server, key string) *client.API {
	cfg := &stripe.BackendConfig{
		URL: stripe.String(srv.URL), HTTPClient: srv.Client(), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}, EnableTelemetry: stripe.Bool(false),
	}
	return client.New(key, &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, cfg)})
}

func mustCustomer(t *testing.T, sc *client.API, projects string) *stripe.Customer {
	t.Helper()
	p := &stripe.CustomerParams{Email: stripe.String("a@example.com")}
	p.AddMetadata("neon_project_id", projects)
	c, err := sc.Customers.New(p)
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	return c
}

func mustPrice(t *testing.T, sc *client.API, lookupKey string, productMeta map[string]string) *stripe.Price {
	t.Helper()
	pp := &stripe.ProductParams{Name: stripe.String("plan " + lookupKey)}
	for k, v := range productMeta {
		pp.AddMetadata(k, v)
	}
	prod, err := sc.Products.New(pp)
	if err != nil {
		t.Fatalf("create product: %v", err)
	}
	params := &stripe.PriceParams{Currency: stripe.String("usd"), Product: stripe.String(prod.ID), UnitAmount: stripe.Int64(1900),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}
	if lookupKey != "" {
		params.LookupKey = stripe.String(lookupKey)
	}
	pr, err := sc.Prices.New(params)
	if err != nil {
		t.Fatalf("create price: %v", err)
	}
	return pr
}

func mustSubscribe(t *testing.T, sc *client.API, cus string, prices ...string) *stripe.Subscription {
	t.Helper()
	params := &stripe.SubscriptionParams{Customer: stripe.String(cus)}
	for _, p := range prices {
		params.Items = append(params.Items, &stripe.SubscriptionItemsParams{Price: stripe.String(p)})
	}
	sub, err := sc.Subscriptions.New(params)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sub
}

func stripeErr(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *stripe.Error", err, err)
	}
	return se
}

func TestCustomers_MetadataAndUpdate(t *testing.T) {
	fake, _, sc := start(t)
	c := mustCustomer(t, sc, "proj-a,proj-b")
	if c.Created != t0.Unix() || c.Metadata["neon_project_id"] != "proj-a,proj-b" || !strings.HasPrefix(c.ID, "cus_") {
		t.Fatalf("created %+v", c)
	}
	fake.SetNow(t0.Add(time.Hour))
	up := &stripe.CustomerParams{}
	up.AddMetadata("neon_project_id", "proj-c")
	up.AddMetadata("tier", "gold")
	if _, err := sc.Customers.Update(c.ID, up); err != nil {
		t.Fatal(err)
	}
	del := &stripe.CustomerParams{}
	del.AddMetadata("tier", "") // an empty value deletes the key, as in Stripe
	got, err := sc.Customers.Update(c.ID, del)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metadata) != 1 || got.Metadata["neon_project_id"] != "proj-c" || got.Created != t0.Unix() {
		t.Fatalf("after updates %+v", got)
	}
	_, err = sc.Customers.Get("cus_missing", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("missing customer: %+v", se)
	}
}

// Lists page newest first with limit, starting_after and has_more, and stripe-go's iterator
// walks every page exactly once.
func TestList_Pagination(t *testing.T) {
	fake, _, sc := start(t)
	var ids []string
	for i := range 25 {
		fake.SetNow(t0.Add(time.Duration(i/2) * time.Second)) // pairs share a second: ties by creation order
		ids = append(ids, mustCustomer(t, sc, fmt.Sprintf("p%d", i)).ID)
	}
	p := &stripe.CustomerListParams{}
	p.Limit = stripe.Int64(10)
	p.Single = true
	it := sc.Customers.List(p)
	var page []string
	for it.Next() {
		page = append(page, it.Customer().ID)
	}
	if err := it.Err(); err != nil || len(page) != 10 || page[0] != ids[24] || page[9] != ids[15] || !it.Meta().HasMore {
		t.Fatalf("first page %v has_more %v err %v", page, it.Meta().HasMore, err)
	}
	p.StartingAfter = stripe.String(page[9])
	it = sc.Customers.List(p)
	page = page[:0]
	for it.Next() {
		page = append(page, it.Customer().ID)
	}
	if len(page) != 10 || page[0] != ids[14] || !it.Meta().HasMore {
		t.Fatalf("second page %v", page)
	}

	all := &stripe.CustomerListParams{}
	all.Limit = stripe.Int64(7)
	it = sc.Customers.List(all)
	seen := map[string]bool{}
	for it.Next() {
		if seen[it.Customer().ID] {
			t.Fatalf("customer %s listed twice", it.Customer().ID)
		}
		seen[it.Customer().ID] = true
	}
	if it.Err() != nil || len(seen) != 25 {
		t.Fatalf("iterator saw %d customers, err %v", len(seen), it.Err())
	}
	var gets []string
	for _, r := range fake.Requests() {
		if r.Method == "GET" && r.Path == "/v1/customers" && r.Query.Get("limit") == "7" {
			gets = append(gets, r.Query.Get("starting_after"))
		}
	}
	if len(gets) != 4 || gets[0] != "" {
		t.Fatalf("iterator pages: %q", gets)
	}

	for _, bad := range []string{"limit=0", "limit=101", "starting_after=cus_nope", "limit=x"} {
		status, body := rawGet(t, fake, "/v1/customers?"+bad)
		if status != 400 || !strings.Contains(body, `"invalid_request_error"`) {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
	status, body := rawGet(t, fake, "/v1/customers?ending_before="+ids[10]+"&limit=3")
	if status != 200 || !strings.Contains(body, ids[13]) || !strings.Contains(body, ids[11]) || strings.Contains(body, ids[14]) || !strings.Contains(body, `"has_more":true`) {
		t.Fatalf("ending_before page: %s", body)
	}
}

func rawGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPrices_LookupKeysAndProducts(t *testing.T) {
	_, _, sc := start(t)
	pro := mustPrice(t, sc, "pro", map[string]string{"neonmeter_plan": "pro"})
	mustPrice(t, sc, "free", nil)
	if pro.LookupKey != "pro" || pro.Product.ID == "" || pro.Recurring.Interval != "month" {
		t.Fatalf("price %+v", pro)
	}
	// A lookup key names one price; moving it needs transfer_lookup_key.
	_, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), Product: stripe.String(pro.Product.ID),
		LookupKey: stripe.String("pro"), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || !strings.Contains(se.Msg, "already uses that lookup key") {
		t.Fatalf("duplicate lookup key: %+v", se)
	}
	moved, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), Product: stripe.String(pro.Product.ID),
		LookupKey: stripe.String("pro"), TransferLookupKey: stripe.Bool(true), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	lp := &stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{"pro"})}
	it := sc.Prices.List(lp)
	var found []string
	for it.Next() {
		found = append(found, it.Price().ID)
	}
	if it.Err() != nil || len(found) != 1 || found[0] != moved.ID {
		t.Fatalf("prices with lookup key pro: %v %v", found, it.Err())
	}
	prods := sc.Products.List(&stripe.ProductListParams{})
	n := 0
	for prods.Next() {
		if prods.Product().ID == pro.Product.ID && prods.Product().Metadata["neonmeter_plan"] != "pro" {
			t.Fatalf("product metadata lost: %+v", prods.Product())
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d products", n)
	}
}

// Subscriptions keep items; an upgrade that replaces the item gives the new item its own
// creation time; cancelling sets ended_at; the default list leaves canceled ones out.
func TestSubscriptions_Lifecycle(t *testing.T) {
	fake, _, sc := start(t)
	free := mustPrice(t, sc, "free", nil)
	pro := mustPrice(t, sc, "pro", nil)
	addon := mustPrice(t, sc, "addon", nil)
	cus := mustCustomer(t, sc, "proj-1")
	sub := mustSubscribe(t, sc, cus.ID, free.ID, addon.ID)
	if sub.Status != stripe.SubscriptionStatusActive || sub.StartDate != t0.Unix() || len(sub.Items.Data) != 2 || sub.Customer.ID != cus.ID {
		t.Fatalf("subscription %+v", sub)
	}
	upgradeAt := t0.Add(28*time.Hour + 30*time.Minute)
	fake.SetNow(upgradeAt)
	var freeItem string
	for _, it := range sub.Items.Data {
		if it.Price.ID == free.ID {
			freeItem = it.ID
		}
	}
	up, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{
		{ID: stripe.String(freeItem), Deleted: stripe.Bool(true)},
		{Price: stripe.String(pro.ID)},
	}, ProrationBehavior: stripe.String("create_prorations")})
	if err != nil {
		t.Fatal(err)
	}
	var proItem *stripe.SubscriptionItem
	for _, it := range up.Items.Data {
		if it.Price.ID == free.ID {
			t.Fatalf("deleted item still listed")
		}
		if it.Price.ID == pro.ID {
			proItem = it
		}
	}
	if proItem == nil || proItem.Created != upgradeAt.Unix() || up.StartDate != t0.Unix() || len(up.Items.Data) != 2 {
		t.Fatalf("after upgrade %+v", up)
	}
	// The same price twice is refused.
	_, err = sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pro.ID)}}})
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 {
		t.Fatalf("duplicate price: %+v", se)
	}

	cancelAt := upgradeAt.Add(50 * time.Hour)
	fake.SetNow(cancelAt)
	gone, err := sc.Subscriptions.Cancel(sub.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gone.Status != stripe.SubscriptionStatusCanceled || gone.EndedAt != cancelAt.Unix() || gone.CanceledAt != cancelAt.Unix() {
		t.Fatalf("canceled %+v", gone)
	}
	count := func(status string) int {
		p := &stripe.SubscriptionListParams{}
		if status != "" {
			p.Status = stripe.String(status)
		}
		it := sc.Subscriptions.List(p)
		n := 0
		for it.Next() {
			n++
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return n
	}
	mustSubscribe(t, sc, cus.ID, pro.ID)
	if d, a, e := count(""), count("all"), count("ended"); d != 1 || a != 2 || e != 1 {
		t.Fatalf("default %d, all %d, ended %d", d, a, e)
	}
	if _, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(free.ID)}}}); err == nil {
		t.Fatalf("updated a canceled subscription")
	}
}

func TestSubscriptions_ScheduledCancellationTrialAndManyItems(t *testing.T) {
	fake, _, sc := start(t)
	cus := mustCustomer(t, sc, "proj-1")
	var prices []string
	for i := range 12 {
		prices = append(prices, mustPrice(t, sc, fmt.Sprintf("k%d", i), nil).ID)
	}
	sub := mustSubscribe(t, sc, cus.ID, prices...)
	if len(sub.Items.Data) != 10 || !sub.Items.HasMore {
		t.Fatalf("embedded items: %d has_more %v", len(sub.Items.Data), sub.Items.HasMore)
	}
	it := sc.SubscriptionItems.List(&stripe.SubscriptionItemListParams{Subscription: stripe.String(sub.ID)})
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 12 {
		t.Fatalf("listed %d items, err %v", n, it.Err())
	}

	up, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)})
	if err != nil || up.Status != stripe.SubscriptionStatusActive || up.CancelAt != t0.AddDate(0, 1, 0).Unix() {
		t.Fatalf("cancel at period end: %+v %v", up, err)
	}
	fake.SetNow(t0.AddDate(0, 1, 0).Add(time.Minute))
	got, err := sc.Subscriptions.Get(sub.ID, nil)
	if err != nil || got.Status != stripe.SubscriptionStatusCanceled || got.EndedAt != t0.AddDate(0, 1, 0).Unix() {
		t.Fatalf("after the period: %+v %v", got, err)
	}

	trial, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID), TrialPeriodDays: stripe.Int64(14),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(prices[0])}}})
	if err != nil || trial.Status != stripe.SubscriptionStatusTrialing {
		t.Fatalf("trial: %+v %v", trial, err)
	}
	if err := fake.SetSubscriptionStatus(trial.ID, stripefake.StatusPastDue); err != nil {
		t.Fatal(err)
	}
	if got, _ := sc.Subscriptions.Get(trial.ID, nil); got.Status != stripe.SubscriptionStatusPastDue {
		t.Fatalf("forced status %s", got.Status)
	}
}

func TestRequests_RecordedWithIdempotencyKey(t *testing.T) {
	fake, _, sc := start(t)
	p := &stripe.CustomerParams{Email: stripe.String("x@example.com")}
	p.SetIdempotencyKey("create-cus-1")
	p.AddMetadata("neon_project_id", "proj-9")
	c, err := sc.Customers.New(p)
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/customers" || r.IdempotencyKey != "create-cus-1" || r.Status != 200 ||
		r.Form.Get("metadata[neon_project_id]") != "proj-9" || !strings.Contains(r.Body, "email=x%40example.com") || !r.At.Equal(t0) {
		t.Fatalf("recorded %+v", r)
	}

	// The same key and body replays the first answer: no second customer.
	again, err := sc.Customers.New(p)
	if err != nil || again.ID != c.ID {
		t.Fatalf("replay gave %v, %v; want %s", again, err, c.ID)
	}
	if again.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay not marked")
	}
	// The same key with another body is refused.
	other := &stripe.CustomerParams{Email: stripe.String("y@example.com")}
	other.SetIdempotencyKey("create-cus-1")
	_, err = sc.Customers.New(other)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeIdempotency {
		t.Fatalf("reused key: %+v", se)
	}
	n := 0
	it := sc.Customers.List(&stripe.CustomerListParams{})
	for it.Next() {
		n++
	}
	if n != 1 {
		t.Fatalf("%d customers after replays", n)
	}
	fake.ResetRequests()
	if len(fake.Requests()) != 0 {
		t.Fatalf("log not reset")
	}
}

func TestFaults(t *testing.T) {
	fake, _, sc := start(t)
	list := func() error {
		it := sc.Customers.List(&stripe.CustomerListParams{})
		for it.Next() {
		}
		return it.Err()
	}
	for _, status := range []int{429, 500, 503} {
		fake.Inject(stripefake.Fault{Method: "GET", Path: "/v1/customers", Status: status})
		se := stripeErr(t, list())
		if se.HTTPStatusCode != status {
			t.Fatalf("injected %d, got %+v", status, se)
		}
		if status == 429 && se.Code != stripe.ErrorCodeRateLimit {
			t.Fatalf("429 code %q", se.Code)
		}
		if err := list(); err != nil {
			t.Fatalf("fault outlived its one request: %v", err)
		}
	}

	// Skip and Times: the second and third matching requests fail.
	fake.Inject(stripefake.Fault{Path: "/v1/customers", Skip: 1, Times: 2, Status: 503})
	results := []bool{list() == nil, list() == nil, list() == nil, list() == nil}
	if fmt.Sprint(results) != "[true false false true]" || fake.PendingFaults() != 0 {
		t.Fatalf("results %v, pending %d", results, fake.PendingFaults())
	}

	// A response dropped after the request was applied: the retry with the same key is
	// answered from the stored response, so exactly one customer exists. (Go's transport
	// itself retries a POST carrying Idempotency-Key on a reused connection; otherwise the
	// caller retries.)
	retry := func(p *stripe.CustomerParams) (*stripe.Customer, error) {
		c, err := sc.Customers.New(p)
		if err != nil {
			c, err = sc.Customers.New(p)
		}
		return c, err
	}
	fake.Inject(stripefake.Fault{Method: "POST", Path: "/v1/customers", Drop: stripefake.DropAfter})
	p := &stripe.CustomerParams{}
	p.SetIdempotencyKey("k-drop")
	c, err := retry(p)
	if err != nil || c.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after drop-after: %v %v", c, err)
	}
	// Dropped before: nothing happened, the retry creates it.
	fake.Inject(stripefake.Fault{Method: "POST", Drop: stripefake.DropBefore})
	q := &stripe.CustomerParams{}
	q.SetIdempotencyKey("k-drop-before")
	d, err := retry(q)
	if err != nil || d.LastResponse.Header.Get("Idempotent-Replayed") == "true" || d.ID == c.ID {
		t.Fatalf("retry after drop-before: %v %v", d, err)
	}
	var dropped int
	for _, r := range fake.Requests() {
		if r.Dropped {
			dropped++
		}
	}
	if dropped != 2 {
		t.Fatalf("%d dropped requests logged", dropped)
	}
	it := sc.Customers.List(&stripe.CustomerListParams{})
	n := 0
	for it.Next() {
		n++
	}
	if n != 2 {
		t.Fatalf("%d customers, want 2", n)
	}

	// A stored 500 is replayed too, as Stripe does.
	fake.Inject(stripefake.Fault{Method: "POST", Status: 500})
	r := &stripe.CustomerParams{}
	r.SetIdempotencyKey("k-500")
	for range 2 {
		if se := stripeErr(t, func() error { _, err := sc.Customers.New(r); return err }()); se.HTTPStatusCode != 500 {
			t.Fatalf("stored 500: %+v", se)
		}
	}
}

func TestAuthAndUnknownRequests(t *testing.T) {
	fake, srv, sc := start(t)
	bad := newClient(srv, "sk_test_wrongkey9876")
	_, err := bad.Customers.New(&stripe.CustomerParams{})
	se := stripeErr(t, err)
	if se.HTTPStatusCode != 401 || strings.Contains(se.Msg, "wrongkey") || !strings.Contains(se.Msg, "9876") {
		t.Fatalf("bad key: %+v", se)
	}
	status, body := rawGet(t, fake, "/v1/nothing")
	if status != 404 || !strings.Contains(body, "Unrecognized request URL (GET: /v1/nothing)") {
		t.Fatalf("unknown route: %d %s", status, body)
	}
	status, body = rawGet(t, fake, "/v1/customers?colour=blue")
	if status != 400 || !strings.Contains(body, "Received unknown parameter: colour") {
		t.Fatalf("unknown parameter: %d %s", status, body)
	}
	status, body = rawGet(t, fake, "/v1/subscriptions?"+url.Values{"expand[]": {"data.customer"}}.Encode())
	if status != 400 || !strings.Contains(body, "cannot be expanded") {
		t.Fatalf("expand: %d %s", status, body)
	}
	status, _ = rawGet(t, fake, "/v1/subscriptions?status=bogus")
	if status != 400 {
		t.Fatalf("bad status filter: %d", status)
	}
	_, err = sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String("cus_missing"),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String("price_x")}}})
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 {
		t.Fatalf("subscribe unknown customer: %+v", se)
	}
	// A 429 refuses the request before it runs: nothing is saved, the retry runs it.
	fake.Inject(stripefake.Fault{Method: "POST", Status: 429})
	k := &stripe.CustomerParams{}
	k.SetIdempotencyKey("k-429")
	if se := stripeErr(t, func() error { _, err := sc.Customers.New(k); return err }()); se.HTTPStatusCode != 429 {
		t.Fatalf("429: %+v", se)
	}
	if c, err := sc.Customers.New(k); err != nil || c.LastResponse.Header.Get("Idempotent-Replayed") == "true" {
		t.Fatalf("retry after 429: %v %v", c, err)
	}
}
