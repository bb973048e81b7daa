package stripefake

import (
	"net/url"
	"time"
)

// Request is one recorded request.
type Request struct {
	Method string
	Path   string
	// Query is the URL's query string, parsed.
	Query url.Values
	// Body is the raw request body (form-encoded for POST).
	Body string
	// Form holds every parameter, from the query and the body.
	Form           url.Values
	IdempotencyKey string
	// Status is the status sent; 0 when the connection was dropped before any answer.
	Status int
	// Dropped is set when the connection was closed instead of answering.
	Dropped bool
	// At is the server's clock when the request arrived.
	At time.Time
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests empties the request log (state and idempotency keys stay).
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}
