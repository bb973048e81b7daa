package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/schema"
)

func TestReadiness_Decision(t *testing.T) {
	for _, c := range []struct {
		name     string
		stopping bool
		pending  []string
		err      error
		code     int
		says     string
	}{
		{"ready", false, nil, nil, http.StatusOK, "ready"},
		{"stopping wins", true, []string{"0001_usage"}, errors.New("refused"), http.StatusServiceUnavailable, "shutting down"},
		{"clickhouse down", false, nil, errors.New("connection refused"), http.StatusServiceUnavailable, "NEONMETER_CLICKHOUSE_ADDR"},
		{"pending", false, []string{"0010_billing_accounted", "0011_finance"}, nil, http.StatusServiceUnavailable, "lacks migration(s) 0010_billing_accounted, 0011_finance"},
	} {
		code, msg := readiness(c.stopping, c.pending, c.err, "db1")
		if code != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, code, msg, c.code, c.says)
		}
	}
}

// /readyz on a real ClickHouse: 503 naming the missing migrations until the database is
// migrated, then 200; 503 once serve's signal context is done, and when ClickHouse stops
// answering.
func TestReadyz_MigrationsClickHouseAndShutdown(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	stop, signal := context.WithCancel(t.Context())
	defer signal()
	rc := &readyCheck{conn: conn, db: db, stop: stop}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		rc.readyz(rec, httptest.NewRequest(http.MethodGet, readyzPath, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "0001_usage") {
		t.Fatalf("before migrate: %d %q, want 503 naming 0001_usage", code, body)
	}
	if _, err := schema.Migrate(t.Context(), conn, db, chtest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("after migrate: %d %q, want 200", code, body)
	}
	signal()
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("after the signal: %d %q, want 503 shutting down", code, body)
	}

	// A connection that no longer answers: a closed one fails every round trip.
	gone := chtest.Connect(t)
	down := &readyCheck{conn: gone, db: db, stop: t.Context()}
	if code, _ := down.check(t.Context()); code != http.StatusOK {
		t.Fatalf("a fresh connection to a migrated database is not ready: %d", code)
	}
	gone.Close()
	if code, msg := down.check(t.Context()); code != http.StatusServiceUnavailable || !strings.Contains(msg, "does not answer") {
		t.Errorf("closed connection: %d %q, want 503 ClickHouse does not answer", code, msg)
	}
}
