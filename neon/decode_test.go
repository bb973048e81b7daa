package neon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/neon"
)

// smallPage is a valid v2 page of one project and two hourly buckets, the base of the bad-input
// cases below (each replaces one piece of it).
const smallPage = `{"projects":[{"project_id":"proj-1","periods":[{"period_id":"9a1b2c3d-0000-4000-8000-000000000001","period_plan":"scale","period_start":"2026-05-01T00:00:00Z","consumption":[` +
	`{"timeframe_start":"2026-05-10T00:00:00Z","timeframe_end":"2026-05-10T01:00:00Z","metrics":[{"metric_name":"compute_unit_seconds","value":100},{"metric_name":"root_branch_bytes_month","value":5000000000}]},` +
	`{"timeframe_start":"2026-05-10T01:00:00Z","timeframe_end":"2026-05-10T02:00:00Z","metrics":[{"metric_name":"compute_unit_seconds","value":200}]}]}]}],"pagination":{"cursor":"proj-1"}}`

func TestDecode_SmallPage(t *testing.T) {
	page, err := neon.DecodeConsumptionForTest([]byte(smallPage), hourlyQuery("org-a", 2), false)
	if err != nil {
		t.Fatal(err)
	}
	want := &neon.ConsumptionPage{Cursor: "proj-1", Projects: []neon.ProjectConsumption{{
		ProjectID: "proj-1",
		Periods: []neon.Period{{
			ID: "9a1b2c3d-0000-4000-8000-000000000001", Plan: "scale", Start: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
			Consumption: []neon.Timeframe{
				{Start: testFrom, End: testFrom.Add(time.Hour), Metrics: []neon.MetricValue{{"compute_unit_seconds", 100}, {"root_branch_bytes_month", 5000000000}}},
				{Start: testFrom.Add(time.Hour), End: testFrom.Add(2 * time.Hour), Metrics: []neon.MetricValue{{"compute_unit_seconds", 200}}},
			},
		}},
	}}}
	if fmt.Sprint(page) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", page, want)
	}
}

func TestDecode_BadInput(t *testing.T) {
	tf2 := "2026-05-10T01:00:00Z"
	cases := []struct {
		name    string
		body    string
		metrics []string // requested; default all
		want    []string // substrings of the error
	}{
		{"malformed JSON", strings.Replace(smallPage, `"value":200}`, `"value":200,}`, 1), nil, []string{"invalid JSON"}},
		{"truncated body", smallPage[:len(smallPage)/2], nil, []string{"unexpected end of body"}},
		{"trailing data", smallPage + `{}`, nil, []string{"end of body"}},
		{"value beyond int64", strings.Replace(smallPage, `"value":200`, `"value":9223372036854775808`, 1), nil,
			[]string{"proj-1", "compute_unit_seconds", tf2, "exceeds int64"}},
		{"huge value", strings.Replace(smallPage, `"value":200`, `"value":1`+strings.Repeat("0", 400), 1), nil, []string{"exceeds int64"}},
		{"negative value", strings.Replace(smallPage, `"value":200`, `"value":-200`, 1), nil,
			[]string{"proj-1", "compute_unit_seconds", tf2, "negative"}},
		{"fraction", strings.Replace(smallPage, `"value":200`, `"value":200.5`, 1), nil, []string{"compute_unit_seconds", "not an integer"}},
		{"exponent", strings.Replace(smallPage, `"value":200`, `"value":2e2`, 1), nil, []string{"not an integer"}},
		{"value as string", strings.Replace(smallPage, `"value":200`, `"value":"200"`, 1), nil, []string{"compute_unit_seconds", "a string"}},
		{"value null", strings.Replace(smallPage, `"value":200`, `"value":null`, 1), nil, []string{"null"}},
		{"unknown metric", strings.Replace(smallPage, `"metric_name":"compute_unit_seconds","value":200`, `"metric_name":"cpu_seconds","value":200`, 1), nil,
			[]string{"proj-1", tf2, `"cpu_seconds" was not requested`}},
		{"metric not requested", smallPage, []string{neon.MetricComputeUnitSeconds}, []string{`"root_branch_bytes_month" was not requested`}},
		{"timeframe not on the hour", strings.NewReplacer(`"2026-05-10T01:00:00Z","timeframe_end":"2026-05-10T02:00:00Z"`, `"2026-05-10T01:30:00Z","timeframe_end":"2026-05-10T02:30:00Z"`).Replace(smallPage), nil,
			[]string{"proj-1", "2026-05-10T01:30:00Z", "on the hour"}},
		{"timeframe two hours", strings.Replace(smallPage, `"timeframe_end":"2026-05-10T01:00:00Z"`, `"timeframe_end":"2026-05-10T02:00:00Z"`, 1), nil, []string{"not 1h"}},
		{"timeframe outside window", strings.Replace(smallPage, `"timeframe_start":"2026-05-10T01:00:00Z","timeframe_end":"2026-05-10T02:00:00Z"`, `"timeframe_start":"2026-05-10T02:00:00Z","timeframe_end":"2026-05-10T03:00:00Z"`, 1), nil, []string{"outside the requested window"}},
		{"timeframe end before start", strings.Replace(smallPage, `"timeframe_end":"2026-05-10T02:00:00Z"`, `"timeframe_end":"2026-05-10T00:00:00Z"`, 1), nil, []string{"not after"}},
		{"bad timestamp", strings.Replace(smallPage, `"2026-05-10T01:00:00Z","timeframe_end"`, `"2026-05-10 01:00","timeframe_end"`, 1), nil, []string{"RFC 3339"}},
		{"impossible date", strings.Replace(smallPage, `"period_start":"2026-05-01T00:00:00Z"`, `"period_start":"2026-02-30T00:00:00Z"`, 1), nil, []string{"period_start", "RFC 3339"}},
		{"metric twice in a timeframe", strings.Replace(smallPage, `{"metric_name":"compute_unit_seconds","value":200}`, `{"metric_name":"compute_unit_seconds","value":200},{"metric_name":"compute_unit_seconds","value":1}`, 1), nil,
			[]string{tf2, "compute_unit_seconds", "repeated"}},
		{"timeframe twice in a period", strings.Replace(smallPage, `"timeframe_start":"2026-05-10T01:00:00Z","timeframe_end":"2026-05-10T02:00:00Z"`, `"timeframe_start":"2026-05-10T00:00:00Z","timeframe_end":"2026-05-10T01:00:00Z"`, 1), nil,
			[]string{"timeframe 2026-05-10T00:00:00Z repeated"}},
		{"key repeated in an object", strings.Replace(smallPage, `"value":200`, `"value":200,"value":300`, 1), nil, []string{`"value" repeated`}},
		// encoding/json would match "Value" to the value field; here it is an unknown key.
		{"key in another case", strings.Replace(smallPage, `"value":200`, `"Value":200`, 1), nil, []string{"compute_unit_seconds", `"value" missing`}},
		{"period twice", strings.Replace(smallPage, `]}]}],"pagination"`, `]},{"period_id":"9a1b2c3d-0000-4000-8000-000000000001","period_plan":"scale","period_start":"2026-05-01T00:00:00Z","consumption":[]}]}],"pagination"`, 1), nil,
			[]string{"period_id", "repeated"}},
		{"projects as object", `{"projects":{"proj-1":[]}}`, nil, []string{"invalid JSON"}},
		{"projects missing", `{"pagination":{"cursor":"x"}}`, nil, []string{`"projects" missing`}},
		{"project_id missing", strings.Replace(smallPage, `"project_id":"proj-1",`, ``, 1), nil, []string{`"project_id" missing`}},
		{"bad project_id", strings.Replace(smallPage, `"project_id":"proj-1"`, `"project_id":"Proj/1"`, 1), nil, []string{"does not match"}},
		{"metrics missing", strings.Replace(smallPage, `,"metrics":[{"metric_name":"compute_unit_seconds","value":200}]`, ``, 1), nil, []string{`"metrics" missing`}},
		{"period_plan missing", strings.Replace(smallPage, `"period_plan":"scale",`, ``, 1), nil, []string{`"period_plan" missing`}},
		{"control character", strings.Replace(smallPage, `"period_plan":"scale"`, "\"period_plan\":\"sc\x01ale\"", 1), nil, []string{"control character"}},
		{"invalid UTF-8", strings.Replace(smallPage, `"period_plan":"scale"`, "\"period_plan\":\"sc\xffale\"", 1), nil, []string{"UTF-8"}},
		{"deep nesting", strings.Replace(smallPage, `"period_plan":"scale"`, `"period_plan":"scale","x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000), 1), nil, []string{"nested deeper"}},
		{"empty body", ``, nil, []string{"unexpected end"}},
		// Keys in the reverse order: the error still names project, timeframe and metric.
		{"reordered keys", `{"projects":[{"periods":[{"consumption":[{"metrics":[{"value":-1,"metric_name":"compute_unit_seconds"}],"timeframe_end":"2026-05-10T01:00:00Z","timeframe_start":"2026-05-10T00:00:00Z"}],"period_start":"2026-05-01T00:00:00Z","period_plan":"scale","period_id":"p-1"}],"project_id":"proj-late"}]}`, nil,
			[]string{`project "proj-late"`, `period "p-1"`, "timeframe 2026-05-10T00:00:00Z", `metric "compute_unit_seconds"`, "negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := hourlyQuery("org-a", 2)
			q.Metrics = tc.metrics
			// Directly, and through the client: retried once, then a clear error.
			_, derr := neon.DecodeConsumptionForTest([]byte(tc.body), q, false)
			srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeJSON(w, 200, []byte(tc.body)) })
			cfg := testConfig(srv.URL)
			cfg.MaxRetries = 1
			_, err := collect(newClient(t, cfg).ConsumptionV2(context.Background(), q))
			for _, e := range []error{derr, err} {
				if !errors.Is(e, neon.ErrBadResponse) {
					t.Fatalf("got %v, want ErrBadResponse", e)
				}
				mentions(t, e, tc.want...)
			}
			if n := srv.n.Load(); n != 2 {
				t.Errorf("%d attempts, want 2 (a bad body is retried)", n)
			}
		})
	}
}

func TestDecode_AcceptedEdges(t *testing.T) {
	cases := []struct {
		name, body string
		check      func(*neon.ConsumptionPage) bool
	}{
		{"max int64", strings.Replace(smallPage, `"value":200`, `"value":9223372036854775807`, 1),
			func(p *neon.ConsumptionPage) bool {
				return p.Projects[0].Periods[0].Consumption[1].Metrics[0].Value == 9223372036854775807
			}},
		{"zero", strings.Replace(smallPage, `"value":200`, `"value":0`, 1),
			func(p *neon.ConsumptionPage) bool { return len(p.Projects[0].Periods[0].Consumption[1].Metrics) == 1 }},
		{"null pagination and period_end, unknown keys", strings.Replace(strings.Replace(smallPage, `"pagination":{"cursor":"proj-1"}`, `"pagination":null,"extra":{"a":[1,2.5e3,true,null,"\u00e9"]}`, 1), `"period_plan":"scale"`, `"period_plan":"scale","period_end":null,"new_field":{}`, 1),
			func(p *neon.ConsumptionPage) bool { return p.Cursor == "" && p.Projects[0].Periods[0].End.IsZero() }},
		{"escaped strings and other offsets", strings.NewReplacer(`"scale"`, `"sc\u0061le"`, `"2026-05-01T00:00:00Z"`, `"2026-05-01T02:00:00+02:00"`).Replace(smallPage),
			func(p *neon.ConsumptionPage) bool {
				per := p.Projects[0].Periods[0]
				return per.Plan == "scale" && per.Start.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) && per.Start.Location() == time.UTC
			}},
		{"whitespace", " \n" + strings.NewReplacer(`,"`, " ,\n\t\"", `":`, "\"\r: ", `{`, "{ ", `]`, " ]").Replace(smallPage) + "\n",
			func(p *neon.ConsumptionPage) bool {
				return p.Projects[0].Periods[0].Consumption[0].Metrics[1].Value == 5000000000
			}},
		{"empty projects", `{"projects":[]}`, func(p *neon.ConsumptionPage) bool { return len(p.Projects) == 0 }},
		{"period_end after start", strings.Replace(smallPage, `"period_plan":"scale"`, `"period_plan":"scale","period_end":"2026-05-20T13:14:15Z"`, 1),
			func(p *neon.ConsumptionPage) bool {
				return p.Projects[0].Periods[0].End.Equal(time.Date(2026, 5, 20, 13, 14, 15, 0, time.UTC))
			}},
	}
	for _, tc := range cases {
		p, err := neon.DecodeConsumptionForTest([]byte(tc.body), hourlyQuery("org-a", 2), false)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.check(p) {
			t.Errorf("%s: decoded %+v", tc.name, p)
		}
	}
}

func TestDecode_ValuesMatchSource(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		metrics := neon.V2Metrics()
		if legacy {
			metrics = neon.LegacyMetrics()
		}
		body := buildPage(pageSpec{firstProject: 40, projects: 7, hours: 48, metrics: metrics, legacy: legacy})
		q := hourlyQuery("org-a", 48)
		page, err := neon.DecodeConsumptionForTest(body, q, legacy)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstSource(t, page, 40, 7, 48, metrics)
	}
}

// checkAgainstSource compares a decoded page with testValue bucket by bucket.
func checkAgainstSource(t *testing.T, page *neon.ConsumptionPage, first, projects, hours int, metrics []string) {
	t.Helper()
	if len(page.Projects) != projects {
		t.Fatalf("%d projects", len(page.Projects))
	}
	for p, pc := range page.Projects {
		pn := first + p
		if pc.ProjectID != projectID(pn) {
			t.Fatalf("project %d is %s", p, pc.ProjectID)
		}
		got := map[string]int64{}
		for _, per := range pc.Periods {
			for _, tf := range per.Consumption {
				for _, m := range tf.Metrics {
					got[tf.Start.Format(time.RFC3339)+" "+m.Name] = m.Value
				}
			}
		}
		want := 0
		for h := range hours {
			for mi, m := range metrics {
				v := testValue(pn, h, mi)
				if v == 0 {
					continue
				}
				want++
				key := testFrom.Add(time.Duration(h)*time.Hour).Format(time.RFC3339) + " " + m
				if got[key] != v {
					t.Fatalf("%s %s = %d, want %d", pc.ProjectID, key, got[key], v)
				}
			}
		}
		if len(got) != want {
			t.Fatalf("%s: %d values, want %d", pc.ProjectID, len(got), want)
		}
	}
}

func TestDecode_Legacy(t *testing.T) {
	body := `{"projects":[{"project_id":"proj-1","periods":[{"period_id":"p-1","period_plan":"business","period_start":"2026-05-01T00:00:00Z","consumption":[` +
		`{"timeframe_start":"2026-05-10T00:00:00Z","timeframe_end":"2026-05-10T01:00:00Z","active_time_seconds":3600,"compute_time_seconds":0,"written_data_bytes":18446744073709551615,"synthetic_storage_size_bytes":7}]}]}]}`
	q := hourlyQuery("", 2)
	q.Metrics = []string{neon.MetricActiveTimeSeconds, neon.MetricComputeTimeSeconds, neon.MetricSyntheticStorageSizeBytes}
	// written_data_bytes was not requested: dropped even though it is beyond int64 (the spec
	// makes it mandatory); compute_time_seconds is 0 and so omitted.
	page, err := neon.DecodeConsumptionForTest([]byte(body), q, true)
	if err != nil {
		t.Fatal(err)
	}
	got := page.Projects[0].Periods[0].Consumption[0].Metrics
	want := []neon.MetricValue{{neon.MetricActiveTimeSeconds, 3600}, {neon.MetricSyntheticStorageSizeBytes, 7}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	bad := []struct{ name, body, want string }{
		{"requested beyond int64", strings.Replace(body, `"active_time_seconds":3600`, `"active_time_seconds":18446744073709551615`, 1), "exceeds int64"},
		{"unknown field", strings.Replace(body, `"active_time_seconds":3600`, `"cpu_seconds":1,"active_time_seconds":3600`, 1), `unknown field "cpu_seconds"`},
		{"metrics list on legacy", strings.Replace(body, `"active_time_seconds":3600`, `"metrics":[],"active_time_seconds":3600`, 1), `unknown field "metrics"`},
		{"negative", strings.Replace(body, `"synthetic_storage_size_bytes":7`, `"synthetic_storage_size_bytes":-7`, 1), "negative"},
		{"field twice", strings.Replace(body, `"synthetic_storage_size_bytes":7`, `"synthetic_storage_size_bytes":7,"synthetic_storage_size_bytes":8`, 1), "repeated"},
	}
	for _, tc := range bad {
		_, err := neon.DecodeConsumptionForTest([]byte(tc.body), q, true)
		if !errors.Is(err, neon.ErrBadResponse) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "proj-1") {
			t.Errorf("%s: got %v, want ErrBadResponse with %q", tc.name, err, tc.want)
		}
	}
}

func TestConsumption_TruncatedOnTheWireIsRetried(t *testing.T) {
	body := buildPage(pageSpec{projects: 3, hours: 4, metrics: neon.V2Metrics()})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			// The connection drops halfway through the promised length.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(200)
			_, _ = w.Write(body[:len(body)/2])
			return
		}
		writeJSON(w, 200, body)
	})
	c := newClient(t, testConfig(srv.URL))
	pages, err := collect(c.ConsumptionV2(context.Background(), hourlyQuery("org-a", 4)))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSource(t, pages[0], 0, 3, 4, neon.V2Metrics())
	if c.Stats().Retries != 1 {
		t.Errorf("retries %d", c.Stats().Retries)
	}
}

// FuzzDecodeConsumptionV2 checks that no input panics the decoder and that whatever it accepts
// is valid JSON that encoding/json reads to the same values.
func FuzzDecodeConsumptionV2(f *testing.F) {
	f.Add([]byte(smallPage))
	f.Add(buildPage(pageSpec{projects: 2, hours: 3, metrics: neon.V2Metrics(), cursor: "c2"}))
	f.Add([]byte(`{"projects":[]}`))
	f.Add([]byte(`{"projects":[],"pagination":null}`))
	f.Add([]byte(strings.Replace(smallPage, `"value":200`, `"value":-0`, 1)))
	f.Add([]byte(strings.Replace(smallPage, `"scale"`, `"sc\ud800ale"`, 1)))
	f.Add([]byte(smallPage[:100]))
	q := hourlyQuery("org-a", 2)
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := neon.DecodeConsumptionForTest(body, q, false)
		if err != nil {
			if !errors.Is(err, neon.ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if err := sameAsStdlib(body, page); err != nil {
			t.Fatalf("%v\nbody %q", err, body)
		}
	})
}

// sameAsStdlib decodes body with encoding/json and compares every field the decoder returns.
func sameAsStdlib(body []byte, page *neon.ConsumptionPage) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("stdlib: %w", err)
	}
	cursor := ""
	if pg, ok := doc["pagination"].(map[string]any); ok {
		cursor, _ = pg["cursor"].(string)
	}
	if cursor != page.Cursor {
		return fmt.Errorf("cursor %q vs %q", page.Cursor, cursor)
	}
	projects, _ := doc["projects"].([]any)
	if len(projects) != len(page.Projects) {
		return fmt.Errorf("%d projects vs %d", len(page.Projects), len(projects))
	}
	ts := func(v any) time.Time {
		s, _ := v.(string)
		t, _ := time.Parse(time.RFC3339Nano, s)
		return t
	}
	for i, p := range projects {
		pm, _ := p.(map[string]any)
		got := page.Projects[i]
		if pm["project_id"] != got.ProjectID {
			return fmt.Errorf("project %d id %q vs %v", i, got.ProjectID, pm["project_id"])
		}
		periods, _ := pm["periods"].([]any)
		if len(periods) != len(got.Periods) {
			return fmt.Errorf("project %d: periods differ", i)
		}
		for j, per := range periods {
			perm, _ := per.(map[string]any)
			gp := got.Periods[j]
			if perm["period_id"] != gp.ID || perm["period_plan"] != gp.Plan || !ts(perm["period_start"]).Equal(gp.Start) {
				return fmt.Errorf("period %d/%d differs: %+v vs %v", i, j, gp, perm)
			}
			if perm["period_end"] != nil && !ts(perm["period_end"]).Equal(gp.End) {
				return fmt.Errorf("period %d/%d end differs", i, j)
			}
			tfs, _ := perm["consumption"].([]any)
			if len(tfs) != len(gp.Consumption) {
				return fmt.Errorf("period %d/%d: timeframes differ", i, j)
			}
			for k, tf := range tfs {
				tfm, _ := tf.(map[string]any)
				gt := gp.Consumption[k]
				if !ts(tfm["timeframe_start"]).Equal(gt.Start) || !ts(tfm["timeframe_end"]).Equal(gt.End) {
					return fmt.Errorf("timeframe %d/%d/%d bounds differ", i, j, k)
				}
				ms, _ := tfm["metrics"].([]any)
				if len(ms) != len(gt.Metrics) {
					return fmt.Errorf("timeframe %d/%d/%d: metrics differ", i, j, k)
				}
				for l, m := range ms {
					mm, _ := m.(map[string]any)
					n, _ := mm["value"].(json.Number)
					v, err := strconv.ParseInt(string(n), 10, 64)
					if err != nil || mm["metric_name"] != gt.Metrics[l].Name || v != gt.Metrics[l].Value {
						return fmt.Errorf("metric %d/%d/%d/%d: %+v vs %v", i, j, k, l, gt.Metrics[l], mm)
					}
				}
			}
		}
	}
	return nil
}
