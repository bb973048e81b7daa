package stripefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// APIKey is the secret key requests must carry as "Authorization: Bearer <key>". Empty
	// accepts any key that looks like a Stripe secret key (sk_test_… or sk_live_…).
	APIKey string
	// Now is the clock; nil starts a fixed clock at 2026-01-01 00:00 UTC (see SetNow).
	Now func() time.Time
}

// Server is the fake. Create it with New; it is safe for concurrent use.
type Server struct {
	mu     sync.Mutex
	apiKey string
	now    func() time.Time
	fixed  time.Time
	mux    *http.ServeMux

	seq           int
	customers     map[string]*customer
	products      map[string]*product
	prices        map[string]*price
	subscriptions map[string]*subscription
	items         map[string]*subscriptionItem
	billing       *billingState // meters.go, usagerecords.go

	requests    []Request
	faults      []*Fault
	idempotency map[string]*storedResponse
}

// New returns an empty fake.
func New(opts Options) *Server {
	s := &Server{
		apiKey:        opts.APIKey,
		now:           opts.Now,
		fixed:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		mux:           http.NewServeMux(),
		customers:     map[string]*customer{},
		products:      map[string]*product{},
		prices:        map[string]*price{},
		subscriptions: map[string]*subscription{},
		items:         map[string]*subscriptionItem{},
		idempotency:   map[string]*storedResponse{},
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "",
			fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path))
	})
	s.routeCustomers()
	s.routeProducts()
	s.routePrices()
	s.routeSubscriptions()
	s.routeBilling()
	return s
}

// SetNow fixes the clock at t (and replaces Options.Now).
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now, s.fixed = nil, t.UTC()
}

// Now returns the server's current time.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now().UTC()
	}
	return s.fixed
}

// nextID returns a new object id with Stripe's prefix; ids sort in creation order.
func (s *Server) nextID(prefix string) (string, int) {
	s.seq++
	return fmt.Sprintf("%s_fake%010d", prefix, s.seq), s.seq
}

// ServeHTTP records the request, applies faults, authentication and idempotency, then runs
// the route, all under one lock so that every request sees a consistent state.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "could not read the request body")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := len(s.requests)
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: string(body),
		Form: parseForm(r, body), IdempotencyKey: r.Header.Get("Idempotency-Key"), At: s.clock(),
	})
	rec := &capture{header: http.Header{}}
	drop := s.serve(rec, r, body)
	s.requests[idx].Status = rec.status
	if drop == dropBefore {
		s.requests[idx].Status = 0
	}
	if drop != dropNone {
		s.requests[idx].Dropped = true
		hangUp(w)
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

type dropMode uint8

const (
	dropNone dropMode = iota
	dropBefore
	dropAfter
)

func (s *Server) serve(w *capture, r *http.Request, body []byte) dropMode {
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "",
			"Invalid API Key provided: "+maskKey(bearer(r)))
		return dropNone
	}
	if f := s.takeFault(r.Method, r.URL.Path); f != nil {
		switch {
		case f.Drop == DropBefore:
			return dropBefore
		case f.Status != 0:
			writeFault(w, r, f)
			s.storeFault(r, body, w)
			return dropNone
		}
		s.handle(w, r, body) // DropAfter: the request takes effect, the answer is lost
		return dropAfter
	}
	s.handle(w, r, body)
	return dropNone
}

// handle runs the route, honouring Idempotency-Key on POST and DELETE as Stripe does: the
// first response for a key is stored (errors included) and replayed for the same request;
// the same key with other parameters is an idempotency_error.
func (s *Server) handle(w *capture, r *http.Request, body []byte) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || (r.Method != http.MethodPost && r.Method != http.MethodDelete) {
		s.mux.ServeHTTP(w, r)
		return
	}
	fp := fingerprint(r, body)
	if prev, ok := s.idempotency[key]; ok {
		if prev.fingerprint != fp {
			writeError(w, http.StatusBadRequest, "idempotency_error", "",
				"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '"+key+"' if you meant to execute a different request.")
			return
		}
		for k, v := range prev.header {
			w.header[k] = v
		}
		w.header.Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.status)
		_, _ = w.Write(prev.body)
		return
	}
	s.mux.ServeHTTP(w, r)
	s.idempotency[key] = &storedResponse{fingerprint: fp, status: w.status, header: w.header.Clone(), body: bytes.Clone(w.body.Bytes())}
}

// storeFault keeps an injected error as a key's response when Stripe would: an error raised
// while the request ran (500 and other 5xx) is saved and replayed; a request refused before
// running (429, 409, 503) saves nothing, so a retry with the key runs it.
func (s *Server) storeFault(r *http.Request, body []byte, w *capture) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || (r.Method != http.MethodPost && r.Method != http.MethodDelete) || w.status < 500 || w.status == http.StatusServiceUnavailable {
		return
	}
	if _, ok := s.idempotency[key]; !ok {
		s.idempotency[key] = &storedResponse{fingerprint: fingerprint(r, body), status: w.status, header: w.header.Clone(), body: bytes.Clone(w.body.Bytes())}
	}
}

// ExpireIdempotencyKeys forgets every stored idempotent response, as Stripe prunes keys after
// 24 h. Meter event identifiers stay remembered for their own window (IdentifierWindow, which
// Stripe documents as at least 24 h), so a resent event is then refused as a duplicate rather
// than replayed.
func (s *Server) ExpireIdempotencyKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idempotency = map[string]*storedResponse{}
}

func fingerprint(r *http.Request, body []byte) string {
	return r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\n" + string(body)
}

type storedResponse struct {
	fingerprint string
	status      int
	header      http.Header
	body        []byte
}

func (s *Server) authorized(r *http.Request) bool {
	key := bearer(r)
	if s.apiKey != "" {
		return key == s.apiKey
	}
	return strings.HasPrefix(key, "sk_test_") || strings.HasPrefix(key, "sk_live_")
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// maskKey shows only a key's last four characters, as Stripe's own error does.
func maskKey(k string) string {
	if len(k) <= 4 {
		return "****"
	}
	prefix := ""
	if i := strings.LastIndex(k[:min(len(k), 8)], "_"); i >= 0 {
		prefix = k[:i+1]
	}
	return prefix + "****" + k[len(k)-4:]
}

// hangUp closes the client's connection without a response, as a network failure would.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("stripefake: dropping a response needs a hijackable connection (serve over httptest.Server)")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// capture buffers a route's response so it can be stored for idempotent replay.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

// call is one request to a route.
type call struct {
	r    *http.Request
	form url.Values
	now  time.Time
}

// apiError is a Stripe error a route returns.
type apiError struct {
	status  int
	typ     string
	code    string
	param   string
	message string
}

func invalid(param, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "parameter_invalid", param: param, message: fmt.Sprintf(format, a...)}
}

func missing(param string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "parameter_missing", param: param, message: "Missing required param: " + param + "."}
}

func noSuch(object, param, id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "resource_missing", param: param, message: fmt.Sprintf("No such %s: '%s'", object, id)}
}

// route registers pattern ("GET /v1/customers/{id}") with the parameters it accepts (the part
// before any "["); others are refused as Stripe refuses them. Lists accept limit,
// starting_after and ending_before too. The server's lock is held while h runs.
func (s *Server) route(pattern string, params []string, list bool, h func(*call) (any, *apiError)) {
	allowed := map[string]bool{}
	for _, p := range params {
		allowed[p] = true
	}
	if list {
		allowed["limit"], allowed["starting_after"], allowed["ending_before"] = true, true, true
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := &call{r: r, form: parseForm(r, body), now: s.clock()}
		for name := range c.form {
			base, _, _ := strings.Cut(name, "[")
			if base == "expand" {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_unknown",
					fmt.Sprintf("This property cannot be expanded (%s).", c.form.Get(name)))
				return
			}
			if !allowed[base] {
				writeErrorParam(w, http.StatusBadRequest, "invalid_request_error", "parameter_unknown", base,
					"Received unknown parameter: "+base)
				return
			}
		}
		obj, apiErr := h(c)
		if apiErr != nil {
			writeErrorParam(w, apiErr.status, apiErr.typ, apiErr.code, apiErr.param, apiErr.message)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	writeErrorParam(w, status, typ, code, "", message)
}

func writeErrorParam(w http.ResponseWriter, status int, typ, code, param, message string) {
	e := map[string]any{"type": typ, "message": message}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	writeJSON(w, status, map[string]any{"error": e})
}
