package sim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// apiPrefix is the path of Neon's server URL; the simulator serves the API under it.
const apiPrefix = "/api/v2"

// FaultHeader is set on every response carrying an injected fault; its value names the fault.
const FaultHeader = "X-Neonsim-Fault"

// faultMarker is the top-level key a malformed body starts with.
const faultMarker = `"neonsim_fault"`

// Faults configures injected failures. Rates are fractions of API requests; the status faults,
// TruncatedRate, MalformedRate, RepeatPageRate and UnavailableRate share one draw per request,
// so their sum should stay ≤ 1. SlowRate is drawn independently.
type Faults struct {
	Rate429, Rate500, Rate503, Rate423 float64 // answered with that status (GeneralError body)
	SlowRate                           float64 // delayed by SlowDelay (real time) before handling
	SlowDelay                          time.Duration
	TruncatedRate                      float64 // 200 with a body cut in the middle
	// MalformedRate: 200 with syntactically valid JSON of the wrong shape or types (a value as a
	// string, projects as a string, …), starting with the key "neonsim_fault".
	MalformedRate float64
	// RepeatPageRate: a consumption request with a cursor is answered with the previous page's
	// content (same projects, same cursor).
	RepeatPageRate float64
	// UnavailableRate: a GET /projects page moves its last projects into
	// unavailable_project_ids, as Neon does when its time limit is hit.
	UnavailableRate float64
	Seed            int64
	// EchoAuthOffset, when positive, makes the message of every 429, 500, 503 and 423 fault quote
	// the request's Authorization header at this byte offset, after filler, as a misbehaving
	// proxy might: tests place the key across a client's message truncation with it.
	EchoAuthOffset int
}

// SetFaults replaces the injected faults and restarts their random sequence from f.Seed.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.faultRNG = mix64(uint64(f.Seed) ^ 0x6661756c7473) // "faults"
}

// InjectedFault reports whether a 200 response body was corrupted on purpose (truncated or
// malformed), for spectest's Recorder.SkipResponse.
func InjectedFault(status int, body []byte) bool {
	if status != http.StatusOK {
		return false
	}
	return !json.Valid(body) || bytes.HasPrefix(body, []byte("{"+faultMarker))
}

type faultKind uint8

const (
	faultNone faultKind = iota
	fault429
	fault500
	fault503
	fault423
	faultTruncated
	faultMalformed
	faultRepeatPage
	faultUnavailable
)

func (k faultKind) String() string {
	return [...]string{"none", "429", "500", "503", "423", "truncated", "malformed", "repeat-page", "unavailable"}[k]
}

// status is the HTTP status and error code of a status fault.
func (k faultKind) status() (int, string) {
	switch k {
	case fault429:
		return http.StatusTooManyRequests, "TOO_MANY_REQUESTS"
	case fault503:
		return http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"
	case fault423:
		return http.StatusLocked, "LOCKED"
	}
	return http.StatusInternalServerError, "INTERNAL_ERROR"
}

// route is one API operation.
type route struct {
	name        string // method and path template, e.g. "GET /projects/{project_id}"
	consumption bool   // uses the consumption bucket
	list        bool   // GET /projects
	h           func(*reqCtx)
}

// reqCtx carries one request through a handler, which writes its answer into buf.
type reqCtx struct {
	s       *Sim
	r       *http.Request
	now     time.Time
	reqID   string
	fault   faultKind // repeat-page or unavailable, for the handler to apply
	applied bool      // the handler applied fault
	status  int
	buf     *[]byte
	header  http.Header
}

func (rc *reqCtx) sec() int64 { return rc.now.Unix() }

// fail writes a GeneralError.
func (rc *reqCtx) fail(status int, code, msg string) {
	rc.status = status
	b := append((*rc.buf)[:0], `{"request_id":`...)
	b = appendString(b, rc.reqID)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	*rc.buf = append(b, '}')
}

func (rc *reqCtx) badRequest(msg string) { rc.fail(http.StatusBadRequest, "BAD_REQUEST", msg) }
func (rc *reqCtx) notFound(msg string)   { rc.fail(http.StatusNotFound, "NOT_FOUND", msg) }

// json writes v with encoding/json (all routes but the consumption ones).
func (rc *reqCtx) json(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		rc.fail(http.StatusInternalServerError, "INTERNAL_ERROR", "encode response: "+err.Error())
		return
	}
	rc.status = http.StatusOK
	*rc.buf = append((*rc.buf)[:0], b...)
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	add := func(rt route) {
		method, path, _ := cutSpace(rt.name)
		mux.HandleFunc(method+" "+apiPrefix+path, s.serve(rt))
	}
	add(route{name: "GET /consumption_history/v2/projects", consumption: true, h: func(rc *reqCtx) { s.handleConsumption(rc, false) }})
	add(route{name: "GET /consumption_history/projects", consumption: true, h: func(rc *reqCtx) { s.handleConsumption(rc, true) }})
	add(route{name: "GET /projects", list: true, h: s.handleListProjects})
	add(route{name: "GET /projects/{project_id}", h: s.handleGetProject})
	add(route{name: "PATCH /projects/{project_id}", h: s.handleUpdateProject})
	add(route{name: "GET /projects/{project_id}/endpoints", h: s.handleListEndpoints})
	add(route{name: "POST /projects/{project_id}/endpoints/{endpoint_id}/suspend", h: s.handleSuspendEndpoint})
	add(route{name: "PATCH /projects/{project_id}/endpoints/{endpoint_id}", h: s.handleUpdateEndpoint})
	add(route{name: "GET /projects/{project_id}/operations/{operation_id}", h: s.handleGetOperation})
	mux.HandleFunc("GET /debug/truth", s.debugTruth)
	mux.HandleFunc("GET /debug/projects/{project_id}", s.debugProject)
	mux.HandleFunc("GET /debug/stats", s.debugStats)
	mux.HandleFunc("POST /debug/connect/{project_id}", s.debugConnect)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "NOT_FOUND", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// serve wraps a handler with what every API request goes through, in Neon's order as far as it
// is observable: authentication, rate limiting, then (injected) faults, then the handler.
func (s *Sim) serve(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bp := s.getBuf()
		defer s.putBuf(bp)
		rc := &reqCtx{s: s, r: r, now: s.now(), status: http.StatusOK, buf: bp, header: w.Header()}

		s.mu.Lock()
		s.stats.Requests[rt.name]++
		if rt.consumption {
			s.stats.ConsumptionRequests++
		}
		s.reqSeq++
		seq := s.reqSeq
		s.mu.Unlock()
		rc.reqID = r.Header.Get("X-Request-ID")
		if rc.reqID == "" {
			rc.reqID = string(appendUUID(nil, s.rnd(seq, 0, saltRequest), s.rnd(seq, 1, saltRequest)))
		}

		if !s.authorized(r) {
			rc.fail(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: send Authorization: Bearer <API key>")
			s.write(w, rc, faultNone)
			return
		}

		s.mu.Lock()
		if !s.takeTokenLocked(rc, rt) {
			s.mu.Unlock()
			rc.fail(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "too many requests")
			s.write(w, rc, faultNone)
			return
		}
		kind, slow := s.drawFaultLocked(rt, r.URL.Query().Has("cursor"))
		s.mu.Unlock()

		if slow {
			s.countFault()
			t := time.NewTimer(s.faultsSlowDelay())
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		switch kind {
		case fault429, fault500, fault503, fault423:
			s.countFault()
			status, code := kind.status()
			rc.fail(status, code, s.faultMessage(r, status))
			s.write(w, rc, kind)
			return
		case faultRepeatPage, faultUnavailable:
			rc.fault = kind
		}

		rt.h(rc)

		applied := faultNone
		switch {
		case rc.applied:
			applied = rc.fault
		case rc.status == http.StatusOK && kind == faultTruncated:
			*rc.buf = (*rc.buf)[:len(*rc.buf)/2]
			applied = kind
		case rc.status == http.StatusOK && kind == faultMalformed:
			*rc.buf = malform(*rc.buf, rt.consumption, seq)
			applied = kind
		}
		if applied != faultNone {
			s.countFault()
		}
		s.write(w, rc, applied)
	}
}

// takeTokenLocked spends a token of the route's bucket, or counts the 429 it gets instead.
func (s *Sim) takeTokenLocked(rc *reqCtx, rt route) bool {
	b := s.genBucket
	if rt.consumption {
		b = s.consBucket
	}
	if b == nil {
		return true
	}
	ok, wait := b.take(s.rateNow())
	if ok {
		return true
	}
	s.stats.RateLimited++
	if rt.consumption {
		s.stats.ConsumptionRateLimited++
	}
	s.limited++
	// Neon documents no Retry-After; sending it on every other 429 exercises both paths.
	if s.limited%2 == 0 && s.cfg.RateNow == nil {
		rc.header.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	return false
}

func (s *Sim) write(w http.ResponseWriter, rc *reqCtx, applied faultKind) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Request-ID", rc.reqID)
	if applied != faultNone {
		h.Set(FaultHeader, applied.String())
	}
	h.Set("Content-Length", strconv.Itoa(len(*rc.buf)))
	w.WriteHeader(rc.status)
	_, _ = w.Write(*rc.buf)
}

// writeError answers outside the API middleware (unknown routes, debug routes).
func (s *Sim) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	bp := s.getBuf()
	defer s.putBuf(bp)
	rc := &reqCtx{s: s, r: r, reqID: r.Header.Get("X-Request-ID"), buf: bp}
	if rc.reqID == "" {
		rc.reqID = "neonsim"
	}
	rc.fail(status, code, msg)
	s.write(w, rc, faultNone)
}

func (s *Sim) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	want := "Bearer " + s.cfg.APIKey
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}

// faultMessage is the message of an injected status fault, echoing the Authorization header
// when Faults.EchoAuthOffset asks for it.
func (s *Sim) faultMessage(r *http.Request, status int) string {
	msg := "injected fault: " + http.StatusText(status)
	s.mu.Lock()
	offset := s.faults.EchoAuthOffset
	s.mu.Unlock()
	if offset <= 0 {
		return msg
	}
	msg += "; request headers follow "
	if len(msg) < offset {
		msg += strings.Repeat(".", offset-len(msg))
	}
	return msg[:offset] + r.Header.Get("Authorization")
}

func (s *Sim) countFault() {
	s.mu.Lock()
	s.stats.Faults++
	s.mu.Unlock()
}

func (s *Sim) faultsSlowDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.SlowDelay
}

// drawFaultLocked picks this request's fault from the configured rates. A fault that does not
// apply to the route (a repeated page without a cursor, say) leaves the request alone.
func (s *Sim) drawFaultLocked(rt route, hasCursor bool) (faultKind, bool) {
	f := &s.faults
	next := func() float64 {
		s.faultRNG += 0x9e3779b97f4a7c15
		return unit(mix64(s.faultRNG))
	}
	slow := f.SlowRate > 0 && next() < f.SlowRate
	rates := [...]struct {
		rate float64
		kind faultKind
	}{
		{f.Rate429, fault429}, {f.Rate500, fault500}, {f.Rate503, fault503}, {f.Rate423, fault423},
		{f.TruncatedRate, faultTruncated}, {f.MalformedRate, faultMalformed},
		{f.RepeatPageRate, faultRepeatPage}, {f.UnavailableRate, faultUnavailable},
	}
	total := 0.0
	for _, x := range rates {
		total += x.rate
	}
	if total <= 0 {
		return faultNone, slow
	}
	u := next()
	for _, x := range rates {
		if u < x.rate {
			switch {
			case x.kind == faultRepeatPage && !(rt.consumption && hasCursor):
				return faultNone, slow
			case x.kind == faultUnavailable && !rt.list:
				return faultNone, slow
			}
			return x.kind, slow
		}
		u -= x.rate
	}
	return faultNone, slow
}

// malform turns a JSON object into valid JSON of the wrong shape: a consumption value as a
// string on odd requests, otherwise the first top-level member replaced by a string.
func malform(body []byte, consumption bool, seq uint64) []byte {
	out := []byte("{" + faultMarker + `:"malformed",`)
	if consumption && seq%2 == 1 {
		if i := bytes.Index(body, []byte(`"value":`)); i >= 0 {
			j := i + len(`"value":`)
			k := j
			for k < len(body) && body[k] >= '0' && body[k] <= '9' {
				k++
			}
			out = append(out, body[1:j]...)
			out = append(out, '"')
			out = append(out, body[j:k]...)
			out = append(out, '"')
			return append(out, body[k:]...)
		}
	}
	key := "projects"
	if len(body) > 2 && body[0] == '{' && body[1] == '"' {
		if end := bytes.IndexByte(body[2:], '"'); end > 0 {
			key = string(body[2 : 2+end])
		}
	}
	out = appendString(out, key)
	return append(out, `:"malformed"}`...)
}

// bucket is Neon's rate limit, a token bucket (golang.org/x/time/rate) on Config.RateNow's
// clock, real time by default. Unlike the client's, it refuses instead of queueing, and says
// how long until a token is back.
type bucket struct {
	lim *rate.Limiter
}

func newBucket(perMin float64, burst int) *bucket {
	return &bucket{lim: rate.NewLimiter(rate.Limit(perMin/60), max(burst, 1))}
}

// take spends a token if one is available, else reports how long until one is.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration((1 - b.lim.TokensAt(now)) / float64(b.lim.Limit()) * float64(time.Second))
}
