package neon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// hostile are ids and cursors that would change a URL or a statement if pasted into one.
var hostile = []string{
	`p'; DROP TABLE usage_facts; --`, `p"q\`, "p\nx-injected: 1", "../../projects/other", "p?org_id=other&x=1",
	"p#frag", "p%2F..%2Fother", "prój-ünïcode", "P-UPPER", "p/endpoints", "",
}

// Every method taking a project, endpoint or org id refuses one that does not match Neon's id
// pattern before sending anything, and its error quotes the id (a newline in it cannot forge a
// log line).
func TestClient_HostileIDsRefusedBeforeAnyRequest(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
	})
	c := newClient(t, testConfig(srv.URL))
	ctx := context.Background()
	quota := neon.ProjectUpdate{Quota: &neon.Quota{}}
	off := true
	calls := map[string]func(id string) error{
		"GetProject":              func(id string) error { _, err := c.GetProject(ctx, id); return err },
		"ListEndpoints":           func(id string) error { _, err := c.ListEndpoints(ctx, id); return err },
		"UpdateProject":           func(id string) error { _, _, err := c.UpdateProject(ctx, id, quota); return err },
		"SuspendEndpoint project": func(id string) error { _, _, err := c.SuspendEndpoint(ctx, id, "ep-1"); return err },
		"SuspendEndpoint endpoint": func(id string) error {
			_, _, err := c.SuspendEndpoint(ctx, "proj-1", id)
			return err
		},
		"UpdateEndpoint": func(id string) error {
			_, _, err := c.UpdateEndpoint(ctx, "proj-1", id, neon.EndpointUpdate{Disabled: &off})
			return err
		},
		"GetOperation project": func(id string) error { _, err := c.GetOperation(ctx, id, "op-1"); return err },
		"ListProjects org": func(id string) error {
			_, err := collect(c.ListProjects(ctx, neon.ListProjectsQuery{OrgID: id}))
			return err
		},
		"Consumption org": func(id string) error {
			_, err := collect(c.ConsumptionV2(ctx, hourlyQuery(id, 1)))
			return err
		},
		"Consumption project": func(id string) error {
			q := hourlyQuery("org-a", 1)
			q.ProjectIDs = []string{id}
			_, err := collect(c.ConsumptionV2(ctx, q))
			return err
		},
	}
	for name, call := range calls {
		for _, id := range hostile {
			if id == "" && strings.HasSuffix(name, "org") {
				continue // an empty org means none (every project the key sees) on these routes
			}
			err := call(id)
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(id)) {
				t.Errorf("%s(%q): want an error quoting the id, got %v", name, id, err)
			}
		}
	}
	if srv.n.Load() != 0 {
		t.Fatalf("%d request(s) were sent with hostile ids", srv.n.Load())
	}
}

// What the API returns and the client sends back — a pagination cursor, an operation id — is
// escaped exactly once: the server sees the path and the query it was meant to see, byte for
// byte, and no parameter or path segment the value spells.
func TestClient_EchoedCursorAndOperationIDEscapedOnce(t *testing.T) {
	sentBack := 0
	for _, v := range hostile[:len(hostile)-1] {
		var seenQuery url.Values
		var rawQuery string
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			if !r.URL.Query().Has("cursor") {
				writeJSON(w, 200, fmt.Appendf(nil, `{"projects":[{"id":"proj-1","name":"a"}],"pagination":{"cursor":%q}}`, v))
				return
			}
			seenQuery, rawQuery = r.URL.Query(), r.URL.RawQuery
			writeJSON(w, 200, []byte(`{"projects":[],"pagination":{}}`))
		})
		cfg := testConfig(srv.URL)
		cfg.MaxRetries = 0
		_, err := collect(newClient(t, cfg).ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: "org-a", Limit: 1}))
		switch {
		case err != nil:
			// Cursors that are not printable ASCII are refused as a bad response naming them.
			if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), strconv.Quote(v)) || seenQuery != nil {
				t.Errorf("cursor %q: %v (sent back: %q)", v, err, rawQuery)
			}
		case len(seenQuery) != 3 || seenQuery.Get("cursor") != v || seenQuery.Get("org_id") != "org-a" || seenQuery.Get("limit") != "1":
			t.Errorf("cursor %q: the second page asked %q", v, rawQuery)
		default:
			sentBack++
		}
	}
	if sentBack < 5 {
		t.Errorf("only %d hostile cursors were sent back: the escaping check proves little", sentBack)
	}
	for _, op := range hostile[:len(hostile)-1] {
		var path, rawPath, rawQuery string
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			path, rawPath, rawQuery = r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery
			writeJSON(w, 200, fmt.Appendf(nil, `{"operation":{"id":%q,"project_id":"proj-1","action":"x","status":"finished"}}`, op))
		})
		c := newClient(t, testConfig(srv.URL))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.GetOperation(ctx, "proj-1", op)
		cancel()
		if err != nil {
			t.Fatalf("operation %q: %v", op, err)
		}
		if want := "/projects/proj-1/operations/" + op; path != want || rawQuery != "" || rawPath != "/projects/proj-1/operations/"+url.PathEscape(op) {
			t.Errorf("operation %q: server saw path %q (raw %q, query %q)", op, path, rawPath, rawQuery)
		}
	}
}

// jsonText is s as the inside of a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// A hostile id in an API answer — a project list, a consumption page — or a metric name no one
// asked for makes the page a bad response naming the value quoted; it never reaches a caller
// (nor a row or a URL built from it).
func TestClient_HostileIDsInAnswersRefusedNamingThem(t *testing.T) {
	for _, v := range append(hostile[:len(hostile)-1], "compute_unit_seconds_x") {
		for what, page := range map[string][]byte{
			"project id": bytes.Replace(buildPage(pageSpec{firstProject: 1, projects: 1, hours: 1, metrics: neon.V2Metrics()}),
				[]byte(projectID(1)), []byte(jsonText(v)), 1),
			"metric": buildPage(pageSpec{firstProject: 1, projects: 1, hours: 1, metrics: []string{jsonText(v)}}),
		} {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeJSON(w, 200, page) })
			cfg := testConfig(srv.URL)
			cfg.MaxRetries = 0
			ps, err := collect(newClient(t, cfg).ConsumptionV2(context.Background(), hourlyQuery("org-a", 1)))
			if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), strconv.Quote(v)) || len(ps) != 0 {
				t.Errorf("%s %q in a consumption page: %d page(s), err %v", what, v, len(ps), err)
			}
		}
	}
	for _, id := range hostile[:len(hostile)-1] {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			writeJSON(w, 200, fmt.Appendf(nil, `{"projects":[{"id":%q,"name":"a"}],"pagination":{}}`, id))
		})
		cfg := testConfig(srv.URL)
		cfg.MaxRetries = 0
		ps, err := collect(newClient(t, cfg).ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: "org-a"}))
		if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), strconv.Quote(id)) || len(ps) != 0 {
			t.Errorf("project id %q in a list: %d page(s), err %v", id, len(ps), err)
		}
	}
}
