package neon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/neon"
)

// opServer answers GET .../operations/{id} with the next status of that operation's script.
func opServer(t *testing.T, scripts map[string][]string) (*countingServer, map[string]int) {
	var mu sync.Mutex
	polls := map[string]int{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		mu.Lock()
		script := scripts[id]
		i := min(polls[id], len(script)-1)
		polls[id]++
		mu.Unlock()
		if script == nil {
			generalError(w, r, 404, "", "no such operation")
			return
		}
		writeJSON(w, 200, []byte(fmt.Sprintf(`{"operation":{"id":%q,"project_id":"proj-1","action":"apply_config","status":%q,"error":"disk full","failures_count":%d,"created_at":"2026-05-10T00:00:00Z","updated_at":"2026-05-10T00:00:00Z","total_duration_ms":5}}`, id, script[i], i)))
	})
	return srv, polls
}

func TestWaitOperations(t *testing.T) {
	srv, polls := opServer(t, map[string]([]string){
		"op-a": {"scheduling", "running", "failed", "failed", "finished"}, // failed is retried by Neon
		"op-b": {"running", "skipped"},
		"op-c": {"cancelling", "cancelled"},
		"op-e": {"running", "error"},
	})
	c := newClient(t, testConfig(srv.URL))
	ctx := context.Background()
	ops := []neon.Operation{
		{ID: "op-a", ProjectID: "proj-1", Status: neon.OperationRunning},
		{ID: "op-b", ProjectID: "proj-1", Status: neon.OperationRunning},
		{ID: "op-c", Status: neon.OperationRunning},
		{ID: "op-done", ProjectID: "proj-1", Status: neon.OperationFinished}, // never polled
	}
	if err := c.WaitOperations(ctx, "proj-1", ops); err != nil {
		t.Fatal(err)
	}
	if polls["op-a"] != 5 || polls["op-b"] != 2 || polls["op-c"] != 2 || polls["op-done"] != 0 {
		t.Errorf("polls %v", polls)
	}
	err := c.WaitOperations(ctx, "proj-1", []neon.Operation{{ID: "op-e", Status: neon.OperationScheduling}})
	if !errors.Is(err, neon.ErrOperationFailed) || !strings.Contains(err.Error(), "op-e") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("got %v, want ErrOperationFailed naming op-e and its error", err)
	}
	if err := c.WaitOperations(ctx, "proj-1", []neon.Operation{{ID: "op-x", Status: neon.OperationError}}); !errors.Is(err, neon.ErrOperationFailed) {
		t.Errorf("already failed: %v", err)
	}
	if err := c.WaitOperations(ctx, "proj-1", []neon.Operation{{ID: "op-a", ProjectID: "proj-2", Status: neon.OperationRunning}}); err == nil {
		t.Error("operation of another project accepted")
	}
	if err := c.WaitOperations(ctx, "proj-1", []neon.Operation{{ID: "op-gone", Status: neon.OperationRunning}}); !errors.Is(err, neon.ErrNotFound) {
		t.Errorf("vanished operation: %v", err)
	}
	if err := c.WaitOperations(ctx, "proj-1", nil); err != nil {
		t.Errorf("nothing to wait for: %v", err)
	}
}

func TestUpdateProject_Body(t *testing.T) {
	var sent syncList
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		b, _ := io.ReadAll(r.Body)
		sent.add(r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b))
		writeJSON(w, 200, []byte(`{"project":{"id":"proj-1","settings":{"quota":{"active_time_seconds":1}}},"operations":[]}`))
	})
	c := newClient(t, testConfig(srv.URL))
	ctx := context.Background()
	p, ops, err := c.UpdateProject(ctx, "proj-1", neon.ProjectUpdate{Quota: &neon.Quota{ActiveTimeSeconds: 1}})
	if err != nil || p.Settings.Quota.ActiveTimeSeconds != 1 || len(ops) != 0 {
		t.Fatalf("%+v %v %v", p, ops, err)
	}
	if _, _, err := c.UpdateProject(ctx, "proj-1", neon.ProjectUpdate{DefaultEndpointSettings: &neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.25, SuspendTimeoutSeconds: -1}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// The quota goes whole (0 = unlimited), so clearing a quota is expressible.
		`PATCH /projects/proj-1 application/json {"project":{"settings":{"quota":{"active_time_seconds":1,"compute_time_seconds":0,"written_data_bytes":0,"data_transfer_bytes":0,"logical_size_bytes":0}}}}`,
		`PATCH /projects/proj-1 application/json {"project":{"default_endpoint_settings":{"autoscaling_limit_min_cu":0.25,"suspend_timeout_seconds":-1}}}`,
	}
	if bodies := sent.all(); strings.Join(bodies, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
	// Rejected before any request.
	bad := []neon.ProjectUpdate{
		{},
		{Quota: &neon.Quota{DataTransferBytes: -1}},
		{DefaultEndpointSettings: &neon.DefaultEndpointSettings{}},
		{DefaultEndpointSettings: &neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 0.1}},
		{DefaultEndpointSettings: &neon.DefaultEndpointSettings{AutoscalingLimitMinCU: 4, AutoscalingLimitMaxCU: 2}},
		{DefaultEndpointSettings: &neon.DefaultEndpointSettings{SuspendTimeoutSeconds: 604801}},
	}
	for i, u := range bad {
		if _, _, err := c.UpdateProject(ctx, "proj-1", u); err == nil {
			t.Errorf("bad update %d accepted", i)
		}
	}
	if _, _, err := c.UpdateEndpoint(ctx, "proj-1", "ep-1", neon.EndpointUpdate{}); err == nil {
		t.Error("empty endpoint update accepted")
	}
	for _, id := range []string{"", "../x", "PROJ", strings.Repeat("a", 61)} {
		if _, err := c.GetProject(ctx, id); err == nil {
			t.Errorf("project id %q accepted", id)
		}
	}
	if bodies := sent.all(); len(bodies) != 2 {
		t.Errorf("%d requests; invalid input must send none", len(bodies))
	}
}

func TestMetrics_Lint(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeJSON(w, 200, []byte(`{"endpoints":[]}`)) })
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv.URL)
	cfg.Registerer = reg
	c := newClient(t, cfg)
	if _, err := c.ListEndpoints(context.Background(), "proj-1"); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n < 5 {
		t.Errorf("%d series gathered, %v", n, err)
	}
	for _, name := range []string{
		"neonmeter_neon_api_requests_total", "neonmeter_neon_api_request_duration_seconds",
		"neonmeter_neon_api_throttle_wait_seconds_total", "neonmeter_neon_api_wake_risk_requests_total",
	} {
		if k, _ := testutil.GatherAndCount(reg, name); k == 0 {
			t.Errorf("%s missing", name)
		}
	}
}
