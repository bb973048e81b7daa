package stripefake

import (
	"fmt"
	"net/http"
	"strings"
)

// Drop says when an injected fault closes the connection instead of answering.
type Drop uint8

const (
	// DropNone answers (with Fault.Status).
	DropNone Drop = iota
	// DropBefore closes the connection without applying the request.
	DropBefore
	// DropAfter applies the request (and stores its idempotent response), then closes the
	// connection: the client cannot tell whether it happened.
	DropAfter
)

// Fault is an injected failure of the next matching requests.
type Fault struct {
	// Method matches requests with this method; empty matches any.
	Method string
	// Path matches requests whose path starts with it; empty matches any.
	Path string
	// Skip lets this many matching requests through before the fault starts.
	Skip int
	// Times is how many matching requests fail; 0 means 1.
	Times int
	// Status is the status to answer with (429, 500, 503, …) with a Stripe error body. For a
	// POST with an Idempotency-Key, a 500 (or another 5xx but 503) is saved as the key's
	// response and replayed, as Stripe saves errors raised while a request ran; 429, 409 and
	// 503 refuse the request before it runs and save nothing.
	Status int
	// Drop closes the connection instead; Status is then ignored.
	Drop Drop
	// EchoAuthorization makes the error message quote the request's Authorization header, as
	// a misbehaving proxy or upstream might: clients must redact it before it reaches logs.
	EchoAuthorization bool
}

// Inject adds a fault. Faults are matched in the order they were added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// PendingFaults returns how many injected failures have not happened yet.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.Times
	}
	return n
}

func (s *Server) takeFault(method, path string) *Fault {
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != method) || !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			return nil
		}
		f.Times--
		if f.Times == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// writeFault answers with the body Stripe sends for the status, quoting the request's
// Authorization header when the fault echoes it.
func writeFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.EchoAuthorization {
		writeError(w, f.Status, "invalid_request_error", "",
			fmt.Sprintf("Injected failure with status %d; the request carried Authorization: %s", f.Status, r.Header.Get("Authorization")))
		return
	}
	switch status := f.Status; {
	case status == http.StatusTooManyRequests:
		writeError(w, status, "invalid_request_error", "rate_limit",
			"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")
	case status == http.StatusConflict:
		writeError(w, status, "invalid_request_error", "lock_timeout",
			"This object cannot be accessed right now because another API request or Stripe process is currently accessing it.")
	case status >= 500:
		writeError(w, status, "api_error", "", "An unknown error occurred (injected by the fake).")
	default:
		writeError(w, status, "invalid_request_error", "", fmt.Sprintf("Injected failure with status %d.", status))
	}
}
