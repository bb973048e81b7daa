package neon_test

// Fuzz targets of the Neon response decoders besides FuzzDecodeConsumptionV2 (decode_test.go).
// Consumption pages go to the decoder directly; the other routes go through a real Client whose
// transport answers in-process with the fuzzed body, so every check the client makes on a 2xx
// body (and on an error body) runs. Real-shaped seeds, answers of the Neon simulator, live in
// testdata/fuzz/<target>; docs/fuzzing.md lists what each target asserts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// maxFuzzBody bounds a fuzzed body: large enough for every shape, small enough that each
// input runs in well under a millisecond.
const maxFuzzBody = 64 << 10

// replay is a transport answering every request with one status and body, set per input.
type replay struct {
	status int
	body   []byte
	header http.Header
}

func (r *replay) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range r.header {
		h[k] = v
	}
	return &http.Response{
		StatusCode: r.status, Header: h, Request: req,
		Body: io.NopCloser(bytes.NewReader(r.body)), ContentLength: int64(len(r.body)),
	}, nil
}

// replayClient is a Client over rp that never retries, so one input is one attempt.
func replayClient(f testing.TB, rp *replay) *neon.Client {
	cfg := testConfig("http://neon.test/api/v2")
	cfg.HTTPClient = &http.Client{Transport: rp}
	cfg.MaxRetries = -1
	return newClient(f, cfg)
}

// fuzzReplies runs check on every fuzzed body (of at most maxFuzzBody bytes) with c, a client
// whose every request is answered 200 with that body: the set-up every route's target shares.
func fuzzReplies(f *testing.F, check func(t *testing.T, c *neon.Client)) {
	rp := &replay{status: 200}
	c := replayClient(f, rp)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzBody {
			return
		}
		rp.body = body
		check(t, c)
	})
}

// badResponse checks a refused 2xx body: ErrBadResponse, naming the route, and a reason that
// names one of causes (a field, or the JSON problem).
func badResponse(t *testing.T, err error, route string, causes ...string) {
	t.Helper()
	if !errors.Is(err, neon.ErrBadResponse) {
		t.Fatalf("error %v is not ErrBadResponse", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, route) {
		t.Fatalf("error %q does not name the route %q", msg, route)
	}
	for _, c := range causes {
		if strings.Contains(msg, c) {
			return
		}
	}
	t.Fatalf("error %q names none of %q", msg, causes)
}

// fieldCauses are the words a refused body's error may name it by: a field, or the decoder's
// wording of a JSON problem.
var fieldCauses = []string{
	"decode ", `"projects" missing`, `"project" missing`, `"endpoints" missing`, `"endpoint" missing`,
	"operation, its id or its status missing", "project id", "org_id", "region_id", "name of",
	"negative quota", "endpoint id", "cursor", "unavailable", "twice on one page", "negative",
	"autoscaling_limit", "suspend_timeout_seconds", "operation id", "status missing",
}

// checkCursor is the cursor rule of every listing: empty, or 1–2048 bytes of printable ASCII
// (it goes into the next request).
func checkCursor(t *testing.T, c string) {
	t.Helper()
	if len(c) > 2048 || strings.IndexFunc(c, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		t.Fatalf("accepted cursor %q (%d bytes)", c, len(c))
	}
}

// checkOptionalID allows an empty id (not sent) or a well-formed one.
func checkOptionalID(t *testing.T, what, id string) {
	t.Helper()
	if id != "" && !neon.ValidID(id) {
		t.Fatalf("accepted %s %q", what, id)
	}
}

func checkQuota(t *testing.T, q neon.Quota) {
	t.Helper()
	if q.ActiveTimeSeconds < 0 || q.ComputeTimeSeconds < 0 || q.WrittenDataBytes < 0 || q.DataTransferBytes < 0 || q.LogicalSizeBytes < 0 {
		t.Fatalf("accepted negative quota %+v", q)
	}
}

// checkCompute holds compute settings to the spec's domain: CU 0 (unset) or a finite positive
// size, suspend timeout −1 (never), 0 (default) or a positive number of seconds.
func checkCompute(t *testing.T, what string, minCU, maxCU float64, suspend int64) {
	t.Helper()
	for _, cu := range []float64{minCU, maxCU} {
		if cu < 0 || math.IsNaN(cu) || math.IsInf(cu, 0) {
			t.Fatalf("%s: accepted CU %v", what, cu)
		}
	}
	if suspend < -1 {
		t.Fatalf("%s: accepted suspend_timeout_seconds %d", what, suspend)
	}
}

func FuzzListProjectsPage(f *testing.F) {
	f.Add([]byte(`{"projects":[]}`))
	f.Add([]byte(`{"projects":[{"id":"p-1"}],"pagination":{"cursor":"p-1"}}`))
	f.Add([]byte(`{"projects":[{"id":"p-1"},{"id":"p-1"}]}`))
	f.Add([]byte(`{"projects":[{"id":"p-1","org_id":"Org_A"}]}`))
	f.Add([]byte(`{"projects":[{"id":"p-1","settings":{"quota":{"active_time_seconds":-1}}}]}`))
	f.Add([]byte(`{"projects":[],"unavailable_project_ids":["p-2"]}`))
	f.Add([]byte(`{"projects":[{"id":"p-1"},{"id":"p-2"}],"pagination":{"cursor":"a b\u0000"}}`))
	f.Add([]byte(`{"projects":null}`))
	fuzzReplies(f, func(t *testing.T, c *neon.Client) {
		for page, err := range c.ListProjects(context.Background(), neon.ListProjectsQuery{Limit: 2}) {
			if err != nil {
				badResponse(t, err, "list projects", fieldCauses...)
				return
			}
			checkCursor(t, page.Cursor)
			for i, p := range page.Projects {
				checkSummary(t, p)
				for _, q := range page.Projects[:i] {
					if q.ID == p.ID {
						t.Fatalf("accepted project %q twice on one page", p.ID)
					}
				}
			}
			return // the next page would replay this one
		}
	})
}

func checkSummary(t *testing.T, p neon.ProjectSummary) {
	t.Helper()
	if !neon.ValidID(p.ID) {
		t.Fatalf("accepted project id %q", p.ID)
	}
	checkOptionalID(t, "org_id", p.OrgID)
	checkOptionalID(t, "region_id", p.RegionID)
	if len(p.Name) > 1024 {
		t.Fatalf("accepted a name of %d bytes", len(p.Name))
	}
	checkQuota(t, p.Settings.Quota)
	d := p.DefaultEndpointSettings
	checkCompute(t, "default_endpoint_settings", d.AutoscalingLimitMinCU, d.AutoscalingLimitMaxCU, d.SuspendTimeoutSeconds)
}

// FuzzGetProject decodes the answer of GET /projects/{id}, and the same body as the answer of a
// PATCH (which also carries operations).
func FuzzGetProject(f *testing.F) {
	f.Add([]byte(`{"project":{"id":"p-1"}}`))
	f.Add([]byte(`{"project":{"id":"p-1","active_time_seconds":-5}}`))
	f.Add([]byte(`{"project":{"id":"p-1","default_endpoint_settings":{"autoscaling_limit_min_cu":-0.5}}}`))
	f.Add([]byte(`{"project":{"id":"p-1"},"operations":[{"id":"","status":"running"}]}`))
	f.Add([]byte(`{"project":{"id":"p-1"},"operations":[{"id":"op-1","status":"finished","failures_count":-1}]}`))
	f.Add([]byte(`{"project":{"id":"p-1","name":"` + strings.Repeat("x", 1025) + `"}}`))
	f.Add([]byte(`{}`))
	fuzzReplies(f, func(t *testing.T, c *neon.Client) {
		p, err := c.GetProject(context.Background(), "p-1")
		if err != nil {
			badResponse(t, err, "get project p-1", fieldCauses...)
		} else {
			checkProject(t, p)
		}
		p, ops, err := c.UpdateProject(context.Background(), "p-1", neon.ProjectUpdate{Quota: &neon.Quota{}})
		if err != nil {
			badResponse(t, err, "update project p-1", append(fieldCauses, "operation")...)
			return
		}
		checkProject(t, p)
		checkOperations(t, ops)
	})
}

func checkProject(t *testing.T, p *neon.Project) {
	t.Helper()
	checkSummary(t, neon.ProjectSummary{ID: p.ID, Name: p.Name, OrgID: p.OrgID, RegionID: p.RegionID,
		Settings: p.Settings, DefaultEndpointSettings: p.DefaultEndpointSettings})
	k := p.Counters
	if k.ActiveTimeSeconds < 0 || k.ComputeTimeSeconds < 0 || k.WrittenDataBytes < 0 || k.DataTransferBytes < 0 || k.DataStorageBytesHour < 0 {
		t.Fatalf("accepted negative counters %+v", k)
	}
}

// checkOperations holds operations to what WaitOperations needs: an id GetOperation takes
// (1–64 bytes) and a status.
func checkOperations(t *testing.T, ops []neon.Operation) {
	t.Helper()
	for _, op := range ops {
		checkOperation(t, op)
	}
}

func checkOperation(t *testing.T, op neon.Operation) {
	t.Helper()
	if op.ID == "" || len(op.ID) > 64 || op.Status == "" {
		t.Fatalf("accepted operation %+v", op)
	}
	if op.FailuresCount < 0 || op.TotalDurationMS < 0 {
		t.Fatalf("accepted negative counts in operation %+v", op)
	}
}

// FuzzListEndpoints decodes GET /projects/{id}/endpoints, and the same body's "endpoint" as the
// answer of a suspend.
func FuzzListEndpoints(f *testing.F) {
	f.Add([]byte(`{"endpoints":[]}`))
	f.Add([]byte(`{"endpoints":[{"id":"ep-1","project_id":"p-1"}]}`))
	f.Add([]byte(`{"endpoints":[{"id":"EP 1"}]}`))
	f.Add([]byte(`{"endpoints":[{"id":"ep-1","autoscaling_limit_max_cu":-1,"suspend_timeout_seconds":-7}]}`))
	f.Add([]byte(`{"endpoint":{"id":"ep-1"},"operations":[{"id":"op-1","status":"running"}]}`))
	f.Add([]byte(`{"endpoints":{}}`))
	fuzzReplies(f, func(t *testing.T, c *neon.Client) {
		eps, err := c.ListEndpoints(context.Background(), "p-1")
		if err != nil {
			badResponse(t, err, "list endpoints p-1", fieldCauses...)
		} else {
			for _, ep := range eps {
				checkEndpoint(t, ep)
			}
		}
		ep, ops, err := c.SuspendEndpoint(context.Background(), "p-1", "ep-1")
		if err != nil {
			badResponse(t, err, "suspend endpoint p-1/ep-1", append(fieldCauses, "operation")...)
			return
		}
		checkEndpoint(t, *ep)
		checkOperations(t, ops)
	})
}

func checkEndpoint(t *testing.T, ep neon.Endpoint) {
	t.Helper()
	if !neon.ValidID(ep.ID) {
		t.Fatalf("accepted endpoint id %q", ep.ID)
	}
	checkCompute(t, "endpoint "+ep.ID, ep.AutoscalingLimitMinCU, ep.AutoscalingLimitMaxCU, ep.SuspendTimeoutSeconds)
}

func FuzzGetOperation(f *testing.F) {
	f.Add([]byte(`{"operation":{"id":"op-1","status":"running"}}`))
	f.Add([]byte(`{"operation":{"id":"op-1"}}`))
	f.Add([]byte(`{"operation":{"id":"op-1","status":"failed","failures_count":-3}}`))
	f.Add([]byte(`{"operation":null}`))
	fuzzReplies(f, func(t *testing.T, c *neon.Client) {
		op, err := c.GetOperation(context.Background(), "p-1", "op-1")
		if err != nil {
			badResponse(t, err, "get operation p-1/op-1", append(fieldCauses, "operation")...)
			return
		}
		checkOperation(t, *op)
	})
}

// FuzzAPIErrorBody feeds error answers (any 4xx/5xx status, any body, which may echo the API
// key): the error is an *APIError of that status, short, mapped to its sentinel, and never
// holds the key.
func FuzzAPIErrorBody(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{404, `{"code":"","message":"project not found","request_id":"r-1"}`},
		{401, `{"message":"bad key ` + testKey + `"}`},
		{423, `{"code":"LOCKED","message":"project already has running operations"}`},
		{503, "<html>upstream</html>"},
		{500, ""},
		{429, `{"message":"` + strings.Repeat("é", 600) + `"}`},
		{403, `{"code":"\u0041","message":"napi_TESTSECRET_k3y_0123\u0034\u0035\u0036789abcdef"}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	rp := &replay{}
	c := replayClient(f, rp)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if len(body) > maxFuzzBody {
			return
		}
		rp.status, rp.body = 400+int(uint(status)%200), body
		_, err := c.GetProject(context.Background(), "p-1")
		var ae *neon.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("status %d: error %v is not an *APIError", rp.status, err)
		}
		msg := err.Error()
		switch {
		case ae.Status != rp.status || !strings.Contains(msg, fmt.Sprintf("status %d", rp.status)):
			t.Fatalf("status %d reported as %d: %q", rp.status, ae.Status, msg)
		case ae.Route != "/projects/{project_id}":
			t.Fatalf("route %q", ae.Route)
		case len(ae.Message) > 512+len("…") || len(ae.Code) > 64+len("…"):
			t.Fatalf("message of %d bytes, code of %d", len(ae.Message), len(ae.Code))
		case strings.Contains(msg, testKey) || strings.Contains(msg, testKey[:24]):
			t.Fatalf("error holds the API key: %q", msg)
		}
		want := map[int]error{404: neon.ErrNotFound, 429: neon.ErrRateLimited, 423: neon.ErrLocked, 401: neon.ErrUnauthorized, 403: neon.ErrUnauthorized}[rp.status]
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("status %d does not match %v", rp.status, want)
		}
		if errors.Is(err, neon.ErrBadResponse) {
			t.Fatalf("status %d reads as a bad 2xx body", rp.status)
		}
	})
}

// legacyRequest is the query of the legacy consumption target: two hours of hourly buckets,
// the metrics picked by mask (0: the route's default, all).
func consumptionQuery(legacy bool, mask uint8) neon.ConsumptionQuery {
	q := hourlyQuery("org-a", 2)
	all := neon.V2Metrics()
	if legacy {
		all = neon.LegacyMetrics()
	}
	for i, m := range all {
		if mask&(1<<i) != 0 {
			q.Metrics = append(q.Metrics, m)
		}
	}
	return q
}

// FuzzDecodeConsumptionLegacy runs the legacy page decoder: what it accepts must hold to every
// rule of the package doc and agree with encoding/json's reading of the same body.
func FuzzDecodeConsumptionLegacy(f *testing.F) {
	f.Add(buildPage(pageSpec{projects: 2, hours: 2, metrics: neon.LegacyMetrics(), legacy: true, cursor: "c2"}), uint8(0))
	legacy := `{"projects":[{"project_id":"proj-1","periods":[{"period_id":"p-1","period_plan":"business","period_start":"2026-05-01T00:00:00Z","consumption":[` +
		`{"timeframe_start":"2026-05-10T00:00:00Z","timeframe_end":"2026-05-10T01:00:00Z","active_time_seconds":3600,"compute_time_seconds":0,"written_data_bytes":18446744073709551615,"synthetic_storage_size_bytes":7}]}]}]}`
	f.Add([]byte(legacy), uint8(0b1011))
	f.Add([]byte(strings.Replace(legacy, `"active_time_seconds":3600`, `"active_time_seconds":3600,"active_time_seconds":1`, 1)), uint8(0))
	f.Add([]byte(strings.Replace(legacy, `3600`, `-1`, 1)), uint8(1))
	f.Add([]byte(strings.Replace(legacy, `"period_plan":"business"`, `"period_plan":"busi\u006eess","Period_Plan":"x"`, 1)), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, mask uint8) {
		if len(body) > maxFuzzBody {
			return
		}
		q := consumptionQuery(true, mask&0x7f)
		page, err := neon.DecodeConsumptionForTest(body, q, true)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkConsumption(t, page, q, true)
		if err := legacySameAsStdlib(body, page, q); err != nil {
			t.Fatalf("%v\nbody %q", err, body)
		}
	})
}

// FuzzDecodeConsumptionV2Rules complements FuzzDecodeConsumptionV2 (which compares with
// encoding/json) with the rules of the package doc, for any subset of the metrics requested.
func FuzzDecodeConsumptionV2Rules(f *testing.F) {
	f.Add([]byte(smallPage), uint8(0))
	f.Add([]byte(smallPage), uint8(1))
	f.Add(buildPage(pageSpec{projects: 3, hours: 2, metrics: neon.V2Metrics(), cursor: "proj-00000002"}), uint8(0xff))
	f.Add([]byte(strings.Replace(smallPage, `"cursor":"proj-1"`, `"cursor":"a\u0020b"`, 1)), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, mask uint8) {
		if len(body) > maxFuzzBody {
			return
		}
		q := consumptionQuery(false, mask)
		page, err := neon.DecodeConsumptionForTest(body, q, false)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkConsumption(t, page, q, false)
	})
}

// checkDecodeError: a refused page is a *DecodeError (ErrBadResponse) with a reason and an
// offset inside the body.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *neon.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, neon.ErrBadResponse) {
		t.Fatalf("error %v is not a *DecodeError", err)
	}
	if de.Reason == "" || de.Offset < 0 {
		t.Fatalf("error %+v has no reason or a negative offset", de)
	}
}

// checkConsumption holds an accepted page to the rules of the package doc.
func checkConsumption(t *testing.T, page *neon.ConsumptionPage, q neon.ConsumptionQuery, legacy bool) {
	t.Helper()
	checkCursor(t, page.Cursor)
	requested := q.Metrics
	if len(requested) == 0 {
		requested = neon.V2Metrics()
		if legacy {
			requested = neon.LegacyMetrics()
		}
	}
	for _, pc := range page.Projects {
		if !neon.ValidID(pc.ProjectID) {
			t.Fatalf("accepted project id %q", pc.ProjectID)
		}
		for i, per := range pc.Periods {
			checkPeriod(t, per)
			for _, prev := range pc.Periods[:i] {
				if prev.ID == per.ID {
					t.Fatalf("accepted period %q twice", per.ID)
				}
			}
			for j, tf := range per.Consumption {
				checkTimeframe(t, tf, q, requested, legacy)
				for _, prev := range per.Consumption[:j] {
					if prev.Start.Equal(tf.Start) {
						t.Fatalf("accepted timeframe %s twice", tf.Start)
					}
				}
			}
		}
	}
}

func checkPeriod(t *testing.T, per neon.Period) {
	t.Helper()
	label := func(s string, spaces bool) bool {
		return len(s) <= 64 && strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || spaces && r == ' ')
		}) < 0
	}
	if per.ID == "" || !label(per.ID, false) || !label(per.Plan, true) {
		t.Fatalf("accepted period id %q plan %q", per.ID, per.Plan)
	}
	if per.Start.Location() != time.UTC || !per.End.IsZero() && !per.End.After(per.Start) {
		t.Fatalf("accepted period %s–%s", per.Start, per.End)
	}
}

func checkTimeframe(t *testing.T, tf neon.Timeframe, q neon.ConsumptionQuery, requested []string, legacy bool) {
	t.Helper()
	switch {
	case tf.Start.Location() != time.UTC || tf.End.Location() != time.UTC:
		t.Fatalf("timeframe %s–%s not in UTC", tf.Start, tf.End)
	case tf.Start.Before(q.From) || tf.End.After(q.To):
		t.Fatalf("accepted timeframe %s–%s outside %s–%s", tf.Start, tf.End, q.From, q.To)
	case tf.End.Sub(tf.Start) != time.Hour || !tf.Start.Equal(tf.Start.Truncate(time.Hour)):
		t.Fatalf("accepted hourly timeframe %s–%s", tf.Start, tf.End)
	}
	var seen []string
	for _, m := range tf.Metrics {
		switch {
		case !slices.Contains(requested, m.Name):
			t.Fatalf("accepted metric %q, not requested", m.Name)
		case slices.Contains(seen, m.Name):
			t.Fatalf("accepted metric %q twice in one timeframe", m.Name)
		case m.Value < 0 || legacy && m.Value == 0:
			t.Fatalf("accepted %s = %d", m.Name, m.Value)
		}
		seen = append(seen, m.Name)
	}
}

// legacySameAsStdlib compares the metric values of an accepted legacy page with encoding/json's
// reading: each requested, non-zero flat field is a value, and nothing else is.
func legacySameAsStdlib(body []byte, page *neon.ConsumptionPage, q neon.ConsumptionQuery) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("stdlib: %w", err)
	}
	requested := q.Metrics
	if len(requested) == 0 {
		requested = neon.LegacyMetrics()
	}
	list := func(m any, key string) []any { v, _ := m.(map[string]any)[key].([]any); return v }
	projects := list(doc, "projects")
	if len(projects) != len(page.Projects) {
		return fmt.Errorf("%d projects vs %d", len(page.Projects), len(projects))
	}
	for i, p := range projects {
		for j, per := range list(p, "periods") {
			for k, tf := range list(per, "consumption") {
				want := map[string]string{}
				for _, m := range requested {
					if n, ok := tf.(map[string]any)[m].(json.Number); ok && n != "0" {
						want[m] = string(n)
					}
				}
				got := map[string]string{}
				for _, mv := range page.Projects[i].Periods[j].Consumption[k].Metrics {
					got[mv.Name] = fmt.Sprint(mv.Value)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					return fmt.Errorf("timeframe %d/%d/%d: decoded %v, encoding/json reads %v", i, j, k, got, want)
				}
			}
		}
	}
	return nil
}

// Values outside the spec's domain that the decoders accepted until the fuzz targets above
// found them: each is now refused, naming the field.
func TestDecode_RefusesOutOfDomainValues(t *testing.T) {
	rp := &replay{status: 200}
	c := replayClient(t, rp)
	ctx := context.Background()
	getProject := func() error { _, err := c.GetProject(ctx, "p-1"); return err }
	cases := []struct {
		name, body string
		call       func() error
		want       string
	}{
		{"negative counter", `{"project":{"id":"p-1","active_time_seconds":-5}}`, getProject, "active_time_seconds -5 is negative"},
		{"negative default CU", `{"project":{"id":"p-1","default_endpoint_settings":{"autoscaling_limit_max_cu":-1}}}`, getProject,
			"default_endpoint_settings: autoscaling_limit_max_cu -1 is negative"},
		{"operation without id", `{"project":{"id":"p-1"},"operations":[{"id":"","status":"running"}]}`, func() error {
			_, _, err := c.UpdateProject(ctx, "p-1", neon.ProjectUpdate{Quota: &neon.Quota{}})
			return err
		}, `operation id "" empty`},
		{"operation without status", `{"endpoint":{"id":"ep-1"},"operations":[{"id":"op-1"}]}`, func() error {
			_, _, err := c.SuspendEndpoint(ctx, "p-1", "ep-1")
			return err
		}, "operation op-1: status missing"},
		{"endpoint suspend timeout", `{"endpoints":[{"id":"ep-1","suspend_timeout_seconds":-7}]}`, func() error {
			_, err := c.ListEndpoints(ctx, "p-1")
			return err
		}, "endpoint ep-1: suspend_timeout_seconds -7 is below -1"},
		{"negative failures_count", `{"operation":{"id":"op-1","status":"failed","failures_count":-3}}`, func() error {
			_, err := c.GetOperation(ctx, "p-1", "op-1")
			return err
		}, "failures_count -3"},
		{"cursor with a space", `{"projects":[{"id":"p-1"},{"id":"p-2"}],"pagination":{"cursor":"a b"}}`, func() error {
			_, err := collect(c.ListProjects(ctx, neon.ListProjectsQuery{Limit: 2}))
			return err
		}, `cursor "a b" is longer than 2048 bytes or not printable ASCII`},
	}
	for _, tc := range cases {
		rp.body = []byte(tc.body)
		err := tc.call()
		if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrBadResponse naming %q", tc.name, err, tc.want)
		}
	}
}
