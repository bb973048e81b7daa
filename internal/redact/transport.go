package redact

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Transport wraps next (nil: http.DefaultTransport) so that every response body is redacted
// before the client library reads it. Upstream services that echo the Authorization header in
// an error body then cannot put the key into the library's error values, which callers log,
// store and classify without knowing about secrets. Bodies are read whole, which the JSON APIs
// it serves (Stripe) do anyway.
func (r *Redactor) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if r.Empty() {
		return next
	}
	return &transport{next: next, r: r}
}

type transport struct {
	next http.RoundTripper
	r    *Redactor
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, t.r.Error(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, t.r.Error(fmt.Errorf("read response body: %w", err))
	}
	clean := t.r.Bytes(body)
	resp.Body = io.NopCloser(bytes.NewReader(clean))
	if len(clean) != len(body) {
		resp.ContentLength = int64(len(clean))
		resp.Header.Set("Content-Length", strconv.Itoa(len(clean)))
	}
	return resp, nil
}
