package neon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
	"github.com/neonmeter/neonmeter/neon"
)

// escaped spells s as JSON \u escapes, which the raw body does not show as the key.
func escaped(s string) string {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, `\u%04x`, c)
	}
	return b.String()
}

// echoBodies answer with the key cut after n bytes, by the upstream itself or by one of the
// client's limits (message 512, code 64, text body 200 bytes).
func echoBodies(n int) map[string]func(w http.ResponseWriter, auth string) {
	cut := func(limit int) string { return strings.Repeat("x", limit-len("Bearer ")-n) }
	return map[string]func(w http.ResponseWriter, auth string){
		"upstream cut json message": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, `{"code":"","message":"refused %s…"}`, auth[:len("Bearer ")+n])
		},
		"upstream cut json escapes": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, `{"message":"refused Bearer %s"}`, escaped(auth[len("Bearer "):len("Bearer ")+n]))
		},
		"upstream cut body mid-json": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, `{"message":"refused %s`, auth[:len("Bearer ")+n])
		},
		"upstream cut text body": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, "proxy error: %s", auth[:len("Bearer ")+n])
		},
		"client cut message at 512": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, `{"code":"X","message":"%s%s tail"}`, cut(512), auth)
		},
		"client cut code at 64": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, `{"code":"%s%s","message":"m"}`, cut(64), auth)
		},
		"client cut text at 200": func(w http.ResponseWriter, auth string) {
			fmt.Fprintf(w, "%s%s tail", cut(200), auth)
		},
	}
}

// An upstream error body that echoes the Authorization header, cut at every byte of the key —
// by the upstream (only a prefix arrives) or by one of the client's own length limits — leaves
// no prefix of MinPrefix bytes or more in the error, its APIError fields or the retry log lines.
func TestClient_EchoCutAtEveryByteOfTheKey(t *testing.T) {
	for n := 1; n <= len(testKey); n++ {
		for name, body := range echoBodies(n) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.WriteHeader(http.StatusBadGateway)
				body(w, r.Header.Get("Authorization"))
			})
			var logs strings.Builder
			cfg := testConfig(srv.URL)
			cfg.MaxRetries = 1 // the retry line logs the first attempt's error
			cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, err := newClient(t, cfg).GetProject(context.Background(), "proj-1")
			var ae *neon.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway {
				t.Fatalf("%s, %d bytes: want a 502 APIError, got %v", name, n, err)
			}
			for what, s := range map[string]string{"error": err.Error(), "APIError": fmt.Sprintf("%+v", *ae), "logs": logs.String()} {
				if f := redacttest.ScanText(what, s, testKey); len(f) > 0 {
					t.Errorf("%s, key cut after %d bytes: %s", name, n, redacttest.Failures(f))
				}
			}
			// A client-side cut may fall inside the placeholder itself.
			if n >= redact.MinPrefix && !strings.Contains(err.Error(), "Bearer "+redact.Placeholder[:1]) {
				t.Errorf("%s, %d bytes: the echo never reached the error, so the check proves nothing: %v", name, n, err)
			}
			if !strings.Contains(logs.String(), "502") {
				t.Fatalf("%s: no retry was logged, so the log check proves nothing:\n%s", name, logs.String())
			}
		}
	}
}
