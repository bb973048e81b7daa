package spectest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/internal/spectest"
)

func TestRecorder_FlagsBadTraffic(t *testing.T) {
	spec := spectest.Load(t)
	bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"projects":"not-a-list"}`))
	})
	rec := spec.NewRecorder(bad)
	srv := httptest.NewServer(rec)
	defer srv.Close()

	// Missing required org_id/from/to/granularity and a bad body: both must be flagged.
	resp, err := http.Get(srv.URL + "/api/v2/consumption_history/v2/projects?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if errs := rec.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "getConsumptionHistoryPerProjectV2") {
		t.Fatalf("want one request violation naming the operation, got %v", errs)
	}

	q := "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&granularity=hourly&org_id=org-a&metrics=compute_unit_seconds"
	resp, err = http.Get(srv.URL + "/api/v2/consumption_history/v2/projects?" + q)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if errs := rec.Errors(); len(errs) != 2 || !strings.Contains(errs[1].Error(), "response 200") {
		t.Fatalf("want a response violation, got %v", errs)
	}
	if got := rec.Operations()["getConsumptionHistoryPerProjectV2"]; got != 1 {
		t.Fatalf("operations seen = %d, want 1", got)
	}
}

func TestSpec_ProjectIDsFilterValidates(t *testing.T) {
	spec := spectest.Load(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"projects":[]}`))
	})
	rec := spec.NewRecorder(ok)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	base := srv.URL + "/api/v2/consumption_history/v2/projects?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&granularity=hourly&org_id=org-a&metrics=compute_unit_seconds"
	for _, q := range []string{"&project_ids=cold-poetry-09157238&project_ids=quiet-snow-71788278", "&project_ids=Bad_ID!"} {
		resp, err := http.Get(base + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	errs := rec.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "project_ids") {
		t.Fatalf("want exactly the bad project id flagged, got %v", errs)
	}
}
