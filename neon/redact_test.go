package neon_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/neon"
)

// longestKeyPrefix returns the longest prefix of testKey of at least 8 bytes found in s.
func longestKeyPrefix(s string) string {
	for n := len(testKey); n >= 8; n-- {
		if strings.Contains(s, testKey[:n]) {
			return testKey[:n]
		}
	}
	return ""
}

// An echoed key cut by the message limit leaked its first characters: the client truncated
// first and then removed only the whole key (15 of 24 characters reached logs and
// collection_runs.error).
func TestClient_EchoCutByTruncationLeaksNoPrefix(t *testing.T) {
	const keyChars = 15 // how much of the key falls before each limit
	cases := map[string]func(w http.ResponseWriter, r *http.Request){
		"json message cut at 512": func(w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization") // "Bearer <key>"
			filler := strings.Repeat("x", 512-len("Bearer ")-keyChars)
			generalError(w, r, http.StatusBadRequest, "BAD", filler+auth+" was refused")
		},
		"text body cut at 200": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(strings.Repeat("y", 200-len("Bearer ")-keyChars) + r.Header.Get("Authorization")))
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { h(w, r) })
			var logs strings.Builder
			cfg := testConfig(srv.URL)
			cfg.MaxRetries = 1
			cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, err := newClient(t, cfg).ListEndpoints(context.Background(), "proj-1")
			var ae *neon.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("want an APIError, got %v", err)
			}
			for what, s := range map[string]string{"error": err.Error(), "APIError.Message": ae.Message, "logs": logs.String()} {
				if p := longestKeyPrefix(s); p != "" {
					t.Errorf("%s leaks %d key characters %q:\n%s", what, len(p), p, s)
				}
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("the echo was not replaced: %v", err)
			}
		})
	}
}

// A refused key (401 anywhere, 403 outside the consumption routes) matches ErrUnauthorized, so
// commands report it as a configuration error; a consumption 403 stays a plan state.
func TestClient_RefusedKeyIsErrUnauthorized(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { generalError(w, r, status, "", "no") })
		_, err := newClient(t, testConfig(srv.URL)).GetProject(context.Background(), "proj-1")
		if !errors.Is(err, neon.ErrUnauthorized) {
			t.Errorf("status %d on /projects/{id}: %v does not match ErrUnauthorized", status, err)
		}
	}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { generalError(w, r, 403, "", "plan") })
	_, err := collect(newClient(t, testConfig(srv.URL)).ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
	if errors.Is(err, neon.ErrUnauthorized) || !errors.Is(err, neon.ErrNoConsumptionHistory) {
		t.Errorf("consumption 403: %v", err)
	}
}
