package neon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/neonmeter/neonmeter/internal/redact"
)

// Sentinel errors, matched with errors.Is. An *APIError unwraps to the one that fits its
// status and route.
var (
	// ErrNotFound: 404, e.g. an unknown project or an org the key is not a member of.
	ErrNotFound = errors.New("neon: not found")
	// ErrRateLimited: 429 still returned after every retry.
	ErrRateLimited = errors.New("neon: rate limited")
	// ErrNoConsumptionHistory: 403 on a consumption route. A configuration state, not a fault:
	// fall back to the project counters and alert.
	ErrNoConsumptionHistory = errors.New("neon: the organization's Neon plan has no consumption history")
	// ErrWindow: 406, from/to outside the window Neon keeps for the granularity.
	ErrWindow = errors.New("neon: time window outside the granularity's lookback")
	// ErrLocked: 423 still returned after every retry (another operation of the project runs).
	ErrLocked = errors.New("neon: project locked by a running operation")
	// ErrBadResponse: a 2xx body that does not decode or breaks a rule of the package doc, or a
	// pagination sequence that repeats itself; returned once retries could not get a good one.
	ErrBadResponse = errors.New("neon: bad response")
	// ErrOperationFailed: an operation ended in status "error".
	ErrOperationFailed = errors.New("neon: operation failed")
	// ErrUnauthorized: 401, or 403 outside the consumption routes: the API key is wrong,
	// revoked or lacks access to the organization. A configuration error, not a fault.
	ErrUnauthorized = errors.New("neon: the API key was refused")
)

// APIError is a non-2xx answer of the Neon API. It never holds the API key.
type APIError struct {
	Method    string
	Route     string // path template, e.g. "/projects/{project_id}"; never concrete ids
	Status    int
	Code      string // GeneralError.code, may be empty
	Message   string // GeneralError.message, or the start of a non-JSON body
	RequestID string // the X-Request-ID sent with the failing attempt
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "neon api: %s %s: status %d", e.Method, e.Route, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " code %q", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	return b.String()
}

// Unwrap maps the status onto the package's sentinels.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusTooManyRequests:
		return ErrRateLimited
	case http.StatusNotAcceptable:
		return ErrWindow
	case http.StatusLocked:
		return ErrLocked
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		if e.Route == routeConsumptionV2 || e.Route == routeConsumptionLegacy {
			return ErrNoConsumptionHistory
		}
		return ErrUnauthorized
	}
	return nil
}

// maxMessage bounds how much of an error body is kept in an APIError.
const maxMessage = 512

// newAPIError builds the error of a non-2xx answer. Every text taken from the body is stripped
// of the key before it is truncated: a cut through an echoed key would otherwise leave a prefix
// that no longer matches the whole key.
func newAPIError(method, route string, status int, requestID string, body []byte, key string) *APIError {
	e := &APIError{Method: method, Route: route, Status: status, RequestID: requestID}
	r := redact.New(key)
	body = r.Bytes(body)
	var ge struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &ge); err == nil && (ge.Code != "" || ge.Message != "") {
		// JSON escapes can spell the key differently from the raw body: clean the decoded text too.
		e.Code, e.Message = truncate(r.String(ge.Code), 64), truncate(r.String(ge.Message), maxMessage)
		// Neon echoes X-Request-ID; prefer its value only when it sent one of its own.
		if ge.RequestID != "" && requestID == "" {
			e.RequestID = truncate(r.String(ge.RequestID), 128)
		}
		return e
	}
	if len(body) > 0 {
		e.Message = truncate(strings.TrimSpace(string(body)), 200)
	} else {
		e.Message = http.StatusText(status)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// DecodeError is an ErrBadResponse naming where in a consumption page the problem sits.
type DecodeError struct {
	Project   string // project_id, when known
	Period    string // period_id, when known
	Timeframe string // timeframe_start as sent, when known
	Metric    string // metric name, when known
	Offset    int    // byte offset in the body
	Reason    string
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("neon: bad response: ")
	if e.Project != "" {
		fmt.Fprintf(&b, "project %q ", e.Project)
	}
	if e.Period != "" {
		fmt.Fprintf(&b, "period %q ", e.Period)
	}
	if e.Timeframe != "" {
		fmt.Fprintf(&b, "timeframe %s ", e.Timeframe)
	}
	if e.Metric != "" {
		fmt.Fprintf(&b, "metric %q ", e.Metric)
	}
	fmt.Fprintf(&b, "at byte %d: %s", e.Offset, e.Reason)
	return b.String()
}

func (e *DecodeError) Unwrap() error { return ErrBadResponse }

// pageError marks a well-formed page that contradicts the pages before it (a repeated cursor or
// project) or is incomplete; the request is retried like a bad body.
type pageError struct {
	reason string // retry reason label
	detail string
}

func (e *pageError) Error() string { return "neon: bad response: " + e.detail }
func (e *pageError) Unwrap() error { return ErrBadResponse }

// redactedError hides a secret in an error's text. It unwraps to the sentinels the original
// matched and to redacted copies of its typed errors, so errors.Is and errors.As keep working
// without any path back to the secret.
type redactedError struct {
	msg    string
	causes []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.causes }

func sentinels() []error {
	return []error{
		ErrNotFound, ErrRateLimited, ErrNoConsumptionHistory, ErrWindow, ErrLocked, ErrBadResponse,
		ErrOperationFailed, ErrUnauthorized, context.Canceled, context.DeadlineExceeded,
	}
}

// redactErr guarantees the key, and any long prefix of it, never leaves the client inside an
// error, whatever a server echoes.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	clean := redact.New(secret).String
	msg := err.Error()
	if clean(msg) == msg {
		return err
	}
	r := &redactedError{msg: clean(msg)}
	for _, s := range sentinels() {
		if errors.Is(err, s) {
			r.causes = append(r.causes, s)
		}
	}
	var ae *APIError
	if errors.As(err, &ae) {
		c := *ae
		c.Code, c.Message, c.RequestID = clean(c.Code), clean(c.Message), clean(c.RequestID)
		r.causes = append(r.causes, &c)
	}
	var de *DecodeError
	if errors.As(err, &de) {
		c := *de
		c.Project, c.Period, c.Timeframe, c.Metric, c.Reason = clean(c.Project), clean(c.Period), clean(c.Timeframe), clean(c.Metric), clean(c.Reason)
		r.causes = append(r.causes, &c)
	}
	return r
}
