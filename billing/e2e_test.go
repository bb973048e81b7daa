package billing_test

import (
	"context"
	"testing"

	"github.com/neonmeter/neonmeter/internal/testworld"
)

// TestPush_EndToEnd: simulator (1,000 projects, 72 h) → collector → accounts (CSV) → push into
// the recording fake: for every (customer, target, hour) the fake == the ledger == the ground
// truth converted, for both sinks. A second push sends nothing; after a revision the next push
// sends exactly one request per changed cell and nothing else; reconcile finds no drift.
func TestPush_EndToEnd(t *testing.T) {
	w := newWorld(t, 1000)
	ctx := context.Background()
	p := w.pusher(t, nil, nil)
	from, to := window()

	res := push(t, p)
	truth := w.truth(from, to)
	meters, records := 0, 0
	for k := range truth {
		if len(k.Target) > 6 && k.Target[:6] == "price_" {
			records++
		} else {
			meters++
		}
	}
	if meters == 0 || records == 0 {
		t.Fatalf("ground truth has %d meter cells and %d usage-record cells: both sinks must be exercised", meters, records)
	}
	t.Logf("first push: %d actions, %d requests, %d pushed; truth %d meter + %d usage-record cells", len(res.Actions), res.Requests, res.Pushed, meters, records)
	testworld.DiffCells(t, "fake Stripe vs ground truth", w.stripeHolds(), truth)
	testworld.DiffCells(t, "ledger vs ground truth", w.ledgerHolds(t, from, to), truth)
	if n := len(billingRequests(w.stripe.Fake.Requests())); n != res.Requests || res.Requests != len(truth) {
		t.Fatalf("%d requests logged, %d reported, %d non-zero cells: want all equal", n, res.Requests, len(truth))
	}

	w.stripe.Fake.ResetRequests()
	again := push(t, p)
	if n := len(w.stripe.Fake.Requests()); n != 0 || again.Requests != 0 {
		t.Fatalf("a push with nothing changed sent %d requests (reported %d), want 0", n, again.Requests)
	}

	_, after, changed := w.revise(t, from, to)
	w.stripe.Fake.ResetRequests()
	rev := push(t, p)
	reqs := billingRequests(w.stripe.Fake.Requests())
	if len(reqs) != changed || len(w.stripe.Fake.Requests()) != changed {
		t.Fatalf("after the revision: %d requests (%d value requests), want exactly one per changed cell = %d", len(w.stripe.Fake.Requests()), len(reqs), changed)
	}
	t.Logf("revision: %d changed cells, %d requests", changed, rev.Requests)
	testworld.DiffCells(t, "fake Stripe after revision", w.stripeHolds(), after)
	testworld.DiffCells(t, "ledger after revision", w.ledgerHolds(t, from, to), after)
	identifierValues(t, w.stripe.Fake.Requests())

	rec, err := p.Reconcile(ctx, from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Drift) != 0 || rec.Compared == 0 {
		t.Fatalf("reconcile compared %d buckets and found drift %+v", rec.Compared, rec.Drift)
	}
}
