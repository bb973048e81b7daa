package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
)

const key = "napi_0123456789abcdefghij" // 25 bytes

func TestString_RemovesKeyBearerAndLongPrefixes(t *testing.T) {
	r := redact.New(key, "", "abc")
	cases := map[string]string{
		"plain":          "bad key " + key + " given",
		"bearer":         "Authorization: Bearer " + key,
		"cut prefix":     "Authorization: Bearer " + key[:15] + "…",
		"shortest":       "x" + key[:redact.MinPrefix],
		"twice":          key + "," + key[:12],
		"glued to words": "abc" + key + "def",
	}
	for name, in := range cases {
		out := r.String(in)
		if l := redacttest.Leak(out, key); l != "" {
			t.Errorf("%s: %q leaks %q", name, out, l)
		}
		if !strings.Contains(out, redact.Placeholder) {
			t.Errorf("%s: %q has no placeholder", name, out)
		}
	}
	if got := r.String("Bearer " + key); got != "Bearer "+redact.Placeholder {
		t.Errorf("bearer form: %q", got)
	}
	// Fragments shorter than MinPrefix and secrets under 4 bytes are left alone.
	for _, in := range []string{"napi_01 is fine", "abc is not a secret"} {
		if got := r.String(in); got != in {
			t.Errorf("%q changed to %q", in, got)
		}
	}
	if got := redact.New("pw12").String("pw12 and pw12"); got != "[redacted] and [redacted]" {
		t.Errorf("short secret: %q", got)
	}
}

func TestString_SeveralSecretsAndNil(t *testing.T) {
	stripe := "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
	r := redact.New(key, stripe, "clickhouse-pass")
	out := r.String(fmt.Sprintf("%s|%s|%s|%s", key, stripe[:20], "clickhouse-pass", "ok"))
	for _, s := range []string{key, stripe, "clickhouse-pass"} {
		if l := redacttest.Leak(out, s); l != "" {
			t.Errorf("%q leaks %q", out, l)
		}
	}
	if !strings.HasSuffix(out, "|ok") {
		t.Errorf("clean text lost: %q", out)
	}
	var none *redact.Redactor
	if none.String(key) != key || !none.Empty() {
		t.Error("a nil redactor must remove nothing")
	}
	if got := none.With(stripe).String(stripe + key); got != redact.Placeholder+key {
		t.Errorf("With on nil: %q", got)
	}
	if got := redact.New(key).With(stripe).String(key + stripe); got != redact.Placeholder+redact.Placeholder {
		t.Errorf("With keeps the first secrets: %q", got)
	}
}

var errSentinel = errors.New("sentinel")

func TestError_CleanMessageKeepsMatching(t *testing.T) {
	r := redact.New(key)
	err := fmt.Errorf("upstream said %q: %w", "Bearer "+key[:17], errSentinel)
	got := r.Error(err)
	if l := redacttest.Leak(got.Error(), key); l != "" {
		t.Fatalf("error leaks %q: %v", l, got)
	}
	if !errors.Is(got, errSentinel) {
		t.Fatal("redacted error no longer matches its sentinel")
	}
	clean := errors.New("nothing secret")
	if r.Error(clean) != clean || r.Error(nil) != nil {
		t.Fatal("a clean error must come back unchanged")
	}
}

func TestHandler_RedactsMessageAndAttributes(t *testing.T) {
	var buf bytes.Buffer
	r := redact.New(key)
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("pre", "Bearer "+key)
	log.WithGroup("g").Error("failed with "+key[:9], "err", errors.New("echo "+key),
		"list", []string{key[:10]}, slog.Group("inner", "v", key), "stringer", stringer(key), "n", 3)
	out := buf.String()
	if l := redacttest.Leak(out, key); l != "" {
		t.Fatalf("log line leaks %q:\n%s", l, out)
	}
	if strings.Count(out, redact.Placeholder) != 6 || !strings.Contains(out, `"n":3`) {
		t.Fatalf("want 6 placeholders and untouched numbers:\n%s", out)
	}
}

type stringer string

func (s stringer) String() string { return "value " + string(s) }

func TestTransport_RedactsResponseBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"message":"Invalid API Key provided: %s"}}`, req.Header.Get("Authorization"))
	}))
	defer srv.Close()
	hc := &http.Client{Transport: redact.New(key).Transport(nil)}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if l := redacttest.Leak(string(body), key); l != "" || resp.ContentLength != int64(len(body)) {
		t.Fatalf("body %q leaks %q (content length %d)", body, l, resp.ContentLength)
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Bearer [redacted]") {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
}
