// Package stripefake is a stateful, recording fake of the parts of the Stripe API neonmeter
// uses, served as an http.Handler (over httptest in tests). stripe-mock checks the shape of
// requests but stores nothing; this fake checks behaviour: what was created, what a list
// returns page by page, what happens on retries and faults.
//
// It keeps customers (with metadata), products (with metadata), prices (with lookup_key and
// recurring settings), subscriptions and their items, and serves them with Stripe's list
// pagination (limit, starting_after, ending_before, has_more; newest first). Every request is
// recorded (method, path, query, form body, Idempotency-Key, status). POSTs carrying an
// Idempotency-Key are replayed when repeated with the same body (including stored errors,
// as Stripe does) and refused with an idempotency_error when reused with a different one.
// Faults are injected on demand: a status (429, 500, 503, …) with a Stripe error body, or a
// dropped connection before or after the request is applied. Unknown parameters and routes are
// refused the way Stripe refuses them, so a request that works here is not silently wrong.
//
// Extending it: each resource family lives in its own file and registers its routes from a
// method called by New (customers.go → routeCustomers, and so on). Billing Meters, meter
// events, event summaries and usage records belong in new files with their own route method,
// added to the list in New; they share the server's state lock, clock, id sequence, list
// pagination (list.go), form helpers (form.go), errors and faults.
//
// Times come from the server's clock (Options.Now, or SetNow), so tests can build a history
// "in the past": set the clock, make the call, move on.
package stripefake
