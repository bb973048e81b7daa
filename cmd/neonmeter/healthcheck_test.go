package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// healthServer answers healthzPath with status on loopback and returns its port.
func healthServer(t *testing.T, status int) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(healthzPath, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(http.StatusText(status) + ": from the test\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// The image's HEALTHCHECK: exit 0 on 200, 1 on 503 or nothing listening; 0.0.0.0 is asked on
// loopback; no secret file is read (a missing one does not matter).
func TestHealthcheck_ExitCodes(t *testing.T) {
	clearEnv(t)
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", filepath.Join(t.TempDir(), "missing"))
	cases := []struct {
		name   string
		addr   string
		want   int
		output string
	}{
		{"healthy", "0.0.0.0:" + healthServer(t, http.StatusOK), exitOK, "OK: from the test"},
		{"unhealthy", "127.0.0.1:" + healthServer(t, http.StatusServiceUnavailable), exitFailure, "503"},
		{"nothing listening", "127.0.0.1:1", exitFailure, "healthcheck http://127.0.0.1:1/healthz"},
		{"port 0", "127.0.0.1:0", exitUsage, "NEONMETER_LISTEN_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NEONMETER_LISTEN_ADDR", tc.addr)
			code, out, errOut := run(t, context.Background(), "healthcheck", "--timeout", "2s")
			if code != tc.want || !strings.Contains(out+errOut, tc.output) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.want, tc.output, out, errOut)
			}
		})
	}
}
