package neon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neonmeter/neonmeter/internal/logkey"
	"github.com/neonmeter/neonmeter/internal/retry"
)

// Defaults of Config. The consumption rate sits below Neon's documented ~50/min shared bucket;
// the general rate below its 700/min account limit (console traffic counts too).
const (
	DefaultRequestTimeout        = 60 * time.Second
	DefaultConsumptionRatePerMin = 30
	DefaultConsumptionBurst      = 2
	DefaultGeneralRatePerMin     = 600
	DefaultGeneralBurst          = 10
	DefaultMaxRetries            = 8
	DefaultMinBackoff            = time.Second
	DefaultMaxBackoff            = 60 * time.Second
	DefaultOperationPoll         = time.Second
	DefaultOperationTimeout      = 2 * time.Minute
)

// DefaultMaxResponseBytes bounds a response body in memory. A v2 page of 100 projects × 168 h
// × 8 metrics is about 8 MB; anything far beyond is not a page.
const DefaultMaxResponseBytes = 64 << 20

// Config configures a Client. Zero values take the defaults named on each field.
type Config struct {
	// BaseURL of the API, e.g. "https://console.neon.tech/api/v2"; the simulator serves
	// "<url>/api/v2". Required.
	BaseURL string
	// APIKey is sent as a Bearer token; it never appears in a log line, error or metric. Required.
	APIKey string
	// HTTPClient sends the requests; default a client with its own transport. Its Timeout should
	// stay 0: RequestTimeout bounds each attempt instead.
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt, body read included. Default 60s.
	RequestTimeout time.Duration
	// ConsumptionRatePerMin is the token refill rate (requests per minute) of the one bucket
	// shared by both consumption routes, as Neon's own limit is. Default 30.
	ConsumptionRatePerMin float64
	// ConsumptionBurst is that bucket's size. Default 2.
	ConsumptionBurst int
	// GeneralRatePerMin is the refill rate of the bucket of every other route. Default 600.
	GeneralRatePerMin float64
	// GeneralBurst is that bucket's size. Default 10.
	GeneralBurst int
	// MaxRetries is how often one request is repeated after retryable failures. Default 8;
	// negative disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait before a retry: exponential from MinBackoff with
	// full jitter, capped at MaxBackoff. A Retry-After header (seconds or HTTP date) raises the
	// wait up to MaxBackoff. Defaults 1s and 60s.
	MinBackoff, MaxBackoff time.Duration
	// OperationPollInterval is how often WaitOperations polls. Default 1s.
	OperationPollInterval time.Duration
	// OperationTimeout bounds one WaitOperations call. Default 2m.
	OperationTimeout time.Duration
	// MaxResponseBytes is the largest body read; a larger one fails the request without being
	// retried. Memory stays within it whatever Content-Length claims (see readBody). Default
	// 64 MiB.
	MaxResponseBytes int64
	// Registerer receives the client's metrics; optional. Several clients may share one.
	Registerer prometheus.Registerer
	// Logger receives retry and failure details at debug level; default discards.
	Logger *slog.Logger
}

// Client calls the Neon API v2. It is safe for concurrent use. Every attempt carries a fresh
// X-Request-ID, passes a client-side token bucket and is retried per the package doc.
type Client struct {
	baseURL string
	auth    string
	key     string
	http    *http.Client
	cfg     Config
	log     *slog.Logger
	m       *metrics
	stats   counters

	consumption, general *bucket
}

// NewClient validates cfg, fills defaults and returns a client. An error names the bad field.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: t}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("neon config: Registerer: %w", err)
	}
	return &Client{
		baseURL:     strings.TrimRight(cfg.BaseURL, "/"),
		auth:        "Bearer " + cfg.APIKey,
		key:         cfg.APIKey,
		http:        hc,
		cfg:         cfg,
		log:         log.With(logkey.Component, "neon"),
		m:           m,
		consumption: newBucket(bucketConsumption, cfg.ConsumptionRatePerMin, cfg.ConsumptionBurst),
		general:     newBucket(bucketGeneral, cfg.GeneralRatePerMin, cfg.GeneralBurst),
	}, nil
}

// validate checks cfg and fills the defaults of its zero fields.
func (cfg *Config) validate() error {
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		return errors.New("neon config: BaseURL is required")
	case err != nil:
		return errors.New("neon config: BaseURL does not parse as a URL")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return errors.New("neon config: BaseURL must be an absolute http(s) URL")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("neon config: BaseURL must not carry a query or fragment")
	case cfg.APIKey == "":
		return errors.New("neon config: APIKey is required")
	case strings.ContainsAny(cfg.APIKey, "\r\n "):
		return errors.New("neon config: APIKey contains whitespace")
	}
	if err := cfg.fillDefaults(); err != nil {
		return err
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	return nil
}

// fillDefaults replaces zero durations, rates and bursts by their defaults and refuses negative
// ones (and a MaxBackoff below MinBackoff).
func (cfg *Config) fillDefaults() error {
	err := errors.Join(
		orDefault("RequestTimeout", &cfg.RequestTimeout, DefaultRequestTimeout),
		orDefault("MinBackoff", &cfg.MinBackoff, DefaultMinBackoff),
		orDefault("MaxBackoff", &cfg.MaxBackoff, DefaultMaxBackoff),
		orDefault("OperationPollInterval", &cfg.OperationPollInterval, DefaultOperationPoll),
		orDefault("OperationTimeout", &cfg.OperationTimeout, DefaultOperationTimeout),
		orDefault("ConsumptionRatePerMin", &cfg.ConsumptionRatePerMin, DefaultConsumptionRatePerMin),
		orDefault("GeneralRatePerMin", &cfg.GeneralRatePerMin, DefaultGeneralRatePerMin),
		orDefault("ConsumptionBurst", &cfg.ConsumptionBurst, DefaultConsumptionBurst),
		orDefault("GeneralBurst", &cfg.GeneralBurst, DefaultGeneralBurst),
	)
	if err != nil {
		return err
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return errors.New("neon config: MaxBackoff must not be below MinBackoff")
	}
	switch {
	case cfg.MaxResponseBytes < 0:
		return errors.New("neon config: MaxResponseBytes must not be negative")
	case cfg.MaxResponseBytes == 0:
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return nil
}

// orDefault sets *v to def when it is zero and refuses a negative value (or NaN), naming the
// setting.
func orDefault[T int | float64 | time.Duration](name string, v *T, def T) error {
	if !(*v >= 0) { // NaN is not either
		return fmt.Errorf("neon config: %s must not be negative", name)
	}
	if *v == 0 {
		*v = def
	}
	return nil
}

// Stats returns the cumulative counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:    c.stats.requests.Load(),
		Retries:     c.stats.retries.Load(),
		RateLimited: c.stats.rateLimited.Load(),
		Throttled:   c.stats.throttled.Load(),
		WakeRisk:    c.stats.wakeRisk.Load(),
	}
}

// Token bucket names, the values of the bucket label.
const (
	bucketConsumption = "consumption"
	bucketGeneral     = "general"
)

// Route templates: the values of APIError.Route and, with the method, of the route label.
const (
	routeConsumptionV2     = "/consumption_history/v2/projects"
	routeConsumptionLegacy = "/consumption_history/projects"
	routeProjects          = "/projects"
	routeProject           = "/projects/{project_id}"
	routeEndpoints         = "/projects/{project_id}/endpoints"
	routeEndpoint          = "/projects/{project_id}/endpoints/{endpoint_id}"
	routeEndpointSuspend   = "/projects/{project_id}/endpoints/{endpoint_id}/suspend"
	routeOperation         = "/projects/{project_id}/operations/{operation_id}"
)

// request is one logical API call; do may send it several times.
type request struct {
	method   string
	route    string // template
	path     string // concrete, escaped
	query    url.Values
	body     []byte // JSON, for PATCH
	bucket   *bucket
	wakeRisk bool
	// orgID and projectID, when known, name the request in the retry log line.
	orgID, projectID string
	// budget, when set, must grant every attempt before it is sent.
	budget *AttemptBudget
}

// ErrAttemptBudget: the caller's AttemptBudget had no attempt left for a request (or its
// retry), so the client did not send it.
var ErrAttemptBudget = errors.New("neon: attempt budget spent")

// AttemptBudget caps the HTTP attempts, retries included, that requests carrying it may send:
// a collection cycle's share of Neon's consumption limit. The client takes one attempt from it
// right before each send and refuses to send without one, so the count of attempts sent never
// exceeds the limit, whatever 429s or 5xx answers cost. Safe for concurrent use; a nil budget
// is unlimited.
type AttemptBudget struct {
	limit int64
	used  atomic.Int64
}

// NewAttemptBudget returns a budget of limit attempts (none when limit ≤ 0).
func NewAttemptBudget(limit int) *AttemptBudget {
	return &AttemptBudget{limit: int64(max(limit, 0))}
}

// take grants one attempt, or reports false when none is left.
func (b *AttemptBudget) take() bool {
	if b == nil {
		return true
	}
	for {
		n := b.used.Load()
		if n >= b.limit {
			return false
		}
		if b.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Limit is the number of attempts the budget allows.
func (b *AttemptBudget) Limit() int { return int(b.limit) }

// Used is the number of attempts granted so far (each one was sent).
func (b *AttemptBudget) Used() int { return int(b.used.Load()) }

// Left is the number of attempts still allowed.
func (b *AttemptBudget) Left() int { return int(b.limit - b.used.Load()) }

// do sends rq until accept takes a 2xx body or a failure is final. accept returning an error
// makes a GET retry (the body was bad); for mutations the error is final, since the change
// happened. The returned error is stripped of the API key.
func (c *Client) do(ctx context.Context, rq *request, accept func(body []byte) error) error {
	return redactErr(c.doRetry(ctx, rq, accept), c.key)
}

// outcome is how one attempt ended.
type outcome struct {
	err        error // nil when a 2xx body was accepted
	reason     string
	retryable  bool
	status     int // 0 without an answer
	retryAfter time.Duration
}

// doRetry counts attempts from 1; after attempt n fails, the wait is the one before retry n.
func (c *Client) doRetry(ctx context.Context, rq *request, accept func(body []byte) error) error {
	label := routeLabel(rq.method, rq.route)
	last := ""
	for attempt := 1; ; attempt++ {
		if rq.budget != nil && rq.budget.Left() <= 0 {
			return budgetSpent(label, rq.budget, last)
		}
		if err := c.pace(ctx, rq.bucket); err != nil {
			return fmt.Errorf("%s: rate limiter: %w", label, err)
		}
		// Taken after the wait, right before the send: a wait the context ends costs nothing.
		if !rq.budget.take() {
			return budgetSpent(label, rq.budget, last)
		}
		reqID := newRequestID()
		o := c.attempt(ctx, rq, reqID, label, accept)
		if o.err == nil {
			return nil
		}
		last = o.reason
		if !o.retryable || attempt > c.cfg.MaxRetries {
			return o.err // the caller handles (and logs) it
		}
		if rq.budget != nil && rq.budget.Left() <= 0 {
			return budgetSpent(label, rq.budget, last) // no backoff for a retry that cannot be sent
		}
		c.stats.retries.Add(1)
		c.m.retries.WithLabelValues(label, o.reason).Inc()
		wait := c.backoff(attempt, o.retryAfter)
		args := []any{logkey.Route, label, logkey.Attempt, attempt, logkey.Reason, o.reason,
			logkey.Status, o.status, logkey.RequestID, reqID, logkey.Wait, wait, logkey.Err, redactErr(o.err, c.key)}
		if rq.orgID != "" {
			args = append(args, logkey.OrgID, rq.orgID)
		}
		if rq.projectID != "" {
			args = append(args, logkey.ProjectID, rq.projectID)
		}
		c.log.DebugContext(ctx, "neon request retry", args...)
		if err := retry.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: waiting to retry after %s: %w", label, o.reason, err)
		}
	}
}

// budgetSpent is the error of a request its budget refused. It names the reason of the previous
// attempt's failure, never its text (which could echo a secret into an error the collector
// matches by sentinel).
func budgetSpent(label string, b *AttemptBudget, lastReason string) error {
	if lastReason == "" {
		return fmt.Errorf("%s: not sent, all %d attempts of the budget are used: %w", label, b.Limit(), ErrAttemptBudget)
	}
	return fmt.Errorf("%s: not retried after %s, all %d attempts of the budget are used: %w", label, lastReason, b.Limit(), ErrAttemptBudget)
}

// pace takes a token of the request's bucket, counting any wait.
func (c *Client) pace(ctx context.Context, b *bucket) error {
	waited, err := b.wait(ctx)
	if waited > 0 {
		c.stats.throttled.Add(1)
		c.m.throttle.WithLabelValues(b.name).Add(waited.Seconds())
	}
	return err
}

// attempt sends rq once and classifies the result by the retry rules of the package doc.
func (c *Client) attempt(ctx context.Context, rq *request, reqID, label string, accept func(body []byte) error) outcome {
	idempotent := rq.method == http.MethodGet
	status, header, body, err := c.send(ctx, rq, reqID, label)
	switch {
	case err != nil && ctx.Err() != nil:
		return outcome{err: fmt.Errorf("%s (request_id %s): %w", label, reqID, ctx.Err())}
	case errors.Is(err, errBodyTooLarge):
		return outcome{err: fmt.Errorf("%s (request_id %s): %w", label, reqID, err), status: status}
	case err != nil:
		reason := codeFor(err)
		// A mutation may have reached Neon: never repeat it blindly.
		return outcome{err: fmt.Errorf("%s (request_id %s): %s: %w", label, reqID, reason, err), reason: reason, retryable: idempotent}
	case status >= 200 && status < 300:
		aerr := accept(body)
		if aerr == nil {
			return outcome{}
		}
		reason := reasonBadBody
		var pe *pageError
		if errors.As(aerr, &pe) {
			reason = pe.reason
		}
		return outcome{err: fmt.Errorf("%s (request_id %s): %w", label, reqID, aerr), reason: reason, retryable: idempotent, status: status}
	}
	o := outcome{
		err:        newAPIError(rq.method, rq.route, status, reqID, body, c.key),
		status:     status,
		retryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now()),
	}
	switch {
	case status == http.StatusLocked:
		o.reason, o.retryable = reasonStatus423, true
	case status == http.StatusServiceUnavailable:
		o.reason, o.retryable = reasonStatus503, true
	case status == http.StatusTooManyRequests:
		c.stats.rateLimited.Add(1)
		o.reason, o.retryable = reasonStatus429, idempotent
	case status >= 500:
		o.reason, o.retryable = reasonStatus5xx, idempotent
	}
	return o
}

// send makes one attempt and reads the whole body within RequestTimeout.
func (c *Client) send(ctx context.Context, rq *request, reqID, label string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	u := c.baseURL + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Request-ID", reqID)
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.stats.requests.Add(1)
	if rq.wakeRisk {
		c.stats.wakeRisk.Add(1)
		c.m.wakeRisk.WithLabelValues(label).Inc()
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(label, codeFor(err), start)
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, resp.ContentLength, c.cfg.MaxResponseBytes)
	if errors.Is(err, errBodyTooLarge) {
		c.observe(label, strconv.Itoa(resp.StatusCode), start)
		return resp.StatusCode, resp.Header, nil, err
	}
	if err != nil {
		c.observe(label, codeFor(err), start)
		return 0, nil, nil, fmt.Errorf("read body: %w", err)
	}
	c.observe(label, strconv.Itoa(resp.StatusCode), start)
	return resp.StatusCode, resp.Header, data, nil
}

func (c *Client) observe(label, code string, start time.Time) {
	c.m.requests.WithLabelValues(label, code).Inc()
	c.m.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
}

func codeFor(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return reasonTimeout
	}
	return reasonNetwork
}

// errBodyTooLarge marks a body beyond Config.MaxResponseBytes: not retried, since the next
// answer would most likely be as large, and each try would cost the limit in memory again.
var errBodyTooLarge = fmt.Errorf("%w: body too large", ErrBadResponse)

// firstBuffer is the buffer a body of unknown length starts in.
const firstBuffer = 64 << 10

// readBody reads a whole body of at most limit bytes without trusting Content-Length (claimed,
// -1 when absent) for more than a hint: a claim above the limit fails before any read, an
// honest claim is read into one buffer of its size (the transport stops at the claimed length,
// and a body running past it fails), and a body of unknown length grows through buffers of
// ⌈(limit+1)/2^k⌉ bytes, so the last is exactly limit+1 and the one before at most half of it:
// reading never holds more than 1.5 × limit, and what is kept is at most limit.
func readBody(r io.Reader, claimed, limit int64) ([]byte, error) {
	if claimed > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, above the %d-byte limit (NEONMETER_NEON_MAX_RESPONSE_MB)", errBodyTooLarge, claimed, limit)
	}
	step := 0 // buffers left to grow into when the length is unknown
	size := claimed + 1
	if claimed < 0 {
		for size = limit + 1; size > firstBuffer; step++ {
			size = (size + 1) / 2
		}
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if step == 0 {
				if claimed >= 0 {
					return nil, fmt.Errorf("body longer than its Content-Length of %d bytes", claimed)
				}
				return nil, fmt.Errorf("%w: more than the %d-byte limit (NEONMETER_NEON_MAX_RESPONSE_MB)", errBodyTooLarge, limit)
			}
			step--
			next := make([]byte, len(buf), ceilShift(limit+1, step))
			copy(next, buf)
			buf = next
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, fmt.Errorf("%w: more than the %d-byte limit (NEONMETER_NEON_MAX_RESPONSE_MB)", errBodyTooLarge, limit)
	}
	return buf, nil
}

// ceilShift is ⌈n / 2^k⌉.
func ceilShift(n int64, k int) int64 {
	for range k {
		n = (n + 1) / 2
	}
	return n
}

// backoff is the wait before retry n (1 for the first): exponential from MinBackoff with full
// jitter up to MaxBackoff, raised by a Retry-After hint but never beyond MaxBackoff (the caller's
// budget wins over a server hint, and a bogus date cannot stall a run).
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	return retry.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}.DelayAfter(n, retryAfter)
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > 86400 {
			s = 86400
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// newRequestID returns a random UUIDv4, which Neon echoes as request_id.
func newRequestID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
