package billing

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// TestClassify_IdentifierExistsAsStripeWordsIt: once Stripe has forgotten a request's
// idempotency key, a resent meter event is refused with a 400 invalid_request_error whose
// message says an event already exists with the identifier, and no code. That value is in
// Stripe: it must count as accounted, not as a refusal that fails the cycle and re-sends it as
// a new revision.
func TestClassify_IdentifierExistsAsStripeWordsIt(t *testing.T) {
	e := func(status int, typ stripe.ErrorType, code, param, msg string) error {
		return &stripe.Error{HTTPStatusCode: status, Type: typ, Code: stripe.ErrorCode(code), Param: param, Msg: msg}
	}
	inv := stripe.ErrorTypeInvalidRequest
	cases := []struct {
		name string
		err  error
		want failure
	}{
		{"real wording, no code", e(400, inv, "", "", "An event already exists with identifier nm1_0123456789abcdef."), outDuplicate},
		{"real wording, quoted", e(400, inv, "", "", "An event already exists with identifier `nm1_0123`."), outDuplicate},
		{"identifier first", e(400, inv, "", "", "A meter event with identifier nm1_0123 already exists."), outDuplicate},
		{"code form", e(400, inv, "resource_already_exists", "identifier", "An event with identifier `x` already exists."), outDuplicate},
		{"wrapped", fmt.Errorf("send: %w", e(400, inv, "", "", "An event already exists with identifier x.")), outDuplicate},
		{"other 400", e(400, inv, "parameter_invalid", "payload[value]", "The value `x` is not a whole number."), outFailed},
		{"idempotency mismatch", e(400, "idempotency_error", "", "", "Keys for idempotent requests can only be used with the same parameters they were first used with."), outFailed},
		{"a 409 saying exists", e(409, inv, "", "", "An event already exists with identifier x."), outRetry},
		{"no subscription item", fmt.Errorf("customer cus_a price price_x: %w", ErrNoSubscriptionItem), outUnsendable},
		{"rate limited", e(429, inv, "rate_limit", "", "Request rate limit exceeded."), outRetry},
		{"finalized", e(400, inv, "invoice_finalized", "timestamp", "final"), outLate},
		{"network", errors.New("connection reset"), outRetry},
	}
	for _, tc := range cases {
		if got, _ := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
	if _, st := classify(e(http.StatusBadRequest, inv, "", "", "An event already exists with identifier x.")); st != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", st)
	}
}
