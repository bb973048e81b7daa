package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/lease/leasetest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
	"github.com/neonmeter/neonmeter/schema"
)

func TestReadiness_Decision(t *testing.T) {
	for _, c := range []struct {
		name     string
		stopping bool
		pending  []string
		err      error
		coordErr error
		code     int
		says     string
	}{
		{"ready", false, nil, nil, nil, http.StatusOK, "ready"},
		{"stopping wins", true, []string{"0001_usage"}, errors.New("refused"), errors.New("zk down"), http.StatusServiceUnavailable, "shutting down"},
		{"clickhouse down", false, nil, errors.New("connection refused"), nil, http.StatusServiceUnavailable, "NEONMETER_CLICKHOUSE_ADDR"},
		{"pending", false, []string{"0010_billing_accounted", "0011_finance"}, nil, nil, http.StatusServiceUnavailable, "lacks migration(s) 0010_billing_accounted, 0011_finance"},
		{"zookeeper down", false, nil, nil, errors.New("zk: could not connect to a server"), http.StatusServiceUnavailable, "NEONMETER_ZOOKEEPER_ADDRS"},
	} {
		code, msg := readiness(c.stopping, c.pending, c.err, c.coordErr, "db1")
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

// With the leases in ZooKeeper, /readyz also asks the ensemble: 200 while it answers, 503
// naming NEONMETER_ZOOKEEPER_ADDRS when it does not (no job could take its lease).
func TestReadyz_ZooKeeper(t *testing.T) {
	conn, db := chtest.New(t)
	zs := leasetest.ZooKeeper(t, db)
	rc := &readyCheck{conn: conn, db: db, stop: t.Context(), coord: zs.Ping}
	if code, msg := rc.check(t.Context()); code != http.StatusOK || !strings.Contains(msg, "ready") {
		t.Fatalf("ZooKeeper answering: %d %q, want 200", code, msg)
	}
	dead, err := zkstore.Open(zkstore.Options{Addrs: []string{crashtest.FreeAddr(t)}, Root: "/neonmeter", Database: db, SessionTimeout: leasetest.ZooKeeperSession})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	rc.coord = dead.Ping
	start := time.Now()
	code, msg := rc.check(t.Context())
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "NEONMETER_ZOOKEEPER_ADDRS") {
		t.Fatalf("ZooKeeper down: %d %q, want 503 naming NEONMETER_ZOOKEEPER_ADDRS", code, msg)
	}
	if took := time.Since(start); took > readyTimeout+time.Second {
		t.Fatalf("the probe took %s, more than its %s bound", took, readyTimeout)
	}
}
