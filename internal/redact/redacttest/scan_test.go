package redacttest_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
)

const (
	neonKey   = "napi_SCAN_0123456789abcdefgh"
	stripeKey = "sk_test_SCAN_zyxwvutsrq9876"
)

// want checks that findings are exactly the expected places, each with its secret and length.
func want(t *testing.T, got []redacttest.Finding, expected ...redacttest.Finding) {
	t.Helper()
	if len(got) != len(expected) {
		t.Fatalf("want %d finding(s), got %d:\n%s", len(expected), len(got), redacttest.Failures(got))
	}
	for i, e := range expected {
		g := got[i]
		if g.Where != e.Where || g.Secret != e.Secret || g.Len != e.Len || (e.Rows != 0 && g.Rows != e.Rows) {
			t.Errorf("finding %d: got %v, want %s: %d bytes of #%d (%d rows)", i, g, e.Where, e.Len, e.Secret, e.Rows)
		}
		for _, k := range []string{neonKey, stripeKey} {
			if l := redacttest.Leak(g.String(), k); l != "" {
				t.Errorf("finding %d prints the secret it found: %v", i, g)
			}
		}
	}
}

// A leak of every length from MinPrefix up is reported on its line with its length; shorter
// fragments, and the placeholder of a redacted key, are not.
func TestScanText_FindsEveryPrefixFromMinPrefix(t *testing.T) {
	for n := 1; n <= len(neonKey); n++ {
		text := "first line\nBearer " + neonKey[:n] + "…\nlast " + stripeKey + "\n"
		got := redacttest.ScanText("log", text, neonKey, stripeKey)
		exp := []redacttest.Finding{{Where: "log:3", Secret: 1, Len: len(stripeKey)}}
		if n >= redact.MinPrefix {
			exp = append([]redacttest.Finding{{Where: "log:2", Secret: 0, Len: n}}, exp...)
		}
		want(t, got, exp...)
	}
	clean := redact.New(neonKey, stripeKey).String("Bearer " + neonKey + " and " + stripeKey[:9])
	want(t, redacttest.ScanText("redacted", clean, neonKey, stripeKey))
	// The longest of several finds on a line counts; a line without a final newline is read.
	got := redacttest.ScanText("x", "a "+neonKey[:9]+" b "+neonKey[:20], neonKey)
	want(t, got, redacttest.Finding{Where: "x:1", Secret: 0, Len: 20})
	if !strings.Contains(got[0].Context, "<secret #0[:20]>") {
		t.Errorf("context does not mark the find: %q", got[0].Context)
	}
}

// Every file of a tree is read, compressed logs too, and a file that cannot be read fails the
// scan instead of being skipped.
func TestScanDir_FindsLeaksInEveryFileAndRefusesUnreadable(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("clean.log", "nothing here\n")
	nested := write("a/b/serve.log", "line one\nerr=\"Bearer "+neonKey[:12]+"\"\n")
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "one\ntwo\nkey %s\n", stripeKey)
	zw.Close()
	zipped := write("rotated/serve.log.1.gz", gz.String())
	got, err := redacttest.ScanDir(root, neonKey, stripeKey)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got,
		redacttest.Finding{Where: nested + ":2", Secret: 0, Len: 12},
		redacttest.Finding{Where: zipped + ":3", Secret: 1, Len: len(stripeKey)})

	one, err := redacttest.ScanDir(nested, neonKey)
	if err != nil || len(one) != 1 {
		t.Errorf("a file as root: %v, %v", one, err)
	}
	broken := write("broken.gz", "not gzip at all")
	if _, err := redacttest.ScanDir(root, neonKey); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("an unreadable file must fail the scan naming it, got %v", err)
	}
	if _, err := redacttest.ScanDir(filepath.Join(root, "absent"), neonKey); err == nil {
		t.Error("a missing root must fail the scan")
	}
}

// A key in a metric label is found on its line of a real /metrics scrape.
func TestScanText_FindsKeyInMetricLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leaky_requests_total", Help: "A label holds a key."}, []string{"auth"})
	reg.MustRegister(c)
	c.WithLabelValues("Bearer " + stripeKey).Inc()
	c.WithLabelValues("none").Inc()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := redacttest.ScanText("/metrics", string(body), neonKey, stripeKey)
	want(t, got, redacttest.Finding{Where: "/metrics:3", Secret: 1, Len: len(stripeKey)})
	if !strings.HasPrefix(got[0].Context, `leaky_requests_total{auth="Bearer <secret #1`) {
		t.Errorf("the finding does not show the metric: %q", got[0].Context)
	}
}

// Every String-like column of every table holding rows is scanned — String, Nullable,
// FixedString, Array(String) and a materialized view's inner table — and views are not
// scanned twice.
func TestScanClickHouse_FindsKeyInEveryStringColumnType(t *testing.T) {
	conn := chtest.Connect(t)
	db := chtest.Database(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".t (id UInt32, s String, n Nullable(String), f FixedString(40), a Array(String)) ENGINE = MergeTree ORDER BY id",
		"CREATE TABLE " + db + ".clean (id UInt32, s String) ENGINE = MergeTree ORDER BY id",
		"CREATE VIEW " + db + ".v AS SELECT s FROM " + db + ".t",
		"CREATE MATERIALIZED VIEW " + db + ".mv ENGINE = MergeTree ORDER BY s AS SELECT s FROM " + db + ".t",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".t (id, s, n, f, a)")
	if err != nil {
		t.Fatal(err)
	}
	n := "n=" + neonKey[:10]
	for _, row := range [][]any{
		{uint32(1), "e=" + neonKey, &n, "f=" + stripeKey, []string{"x", "a=" + neonKey[:15]}},
		{uint32(2), "ok", (*string)(nil), "ok", []string{}},
		{uint32(3), "e=" + neonKey[:9], new(string), "ok", []string{}},
	} {
		if err := batch.Append(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "INSERT INTO "+db+".clean SELECT 1, 'nothing'"); err != nil {
		t.Fatal(err)
	}
	got, err := redacttest.ScanClickHouse(ctx, conn, db, neonKey, stripeKey)
	if err != nil {
		t.Fatal(err)
	}
	inner := db + "..inner.mv.s"
	want(t, got,
		redacttest.Finding{Where: inner, Secret: 0, Len: len(neonKey), Rows: 2},
		redacttest.Finding{Where: db + ".t.a", Secret: 0, Len: 15, Rows: 1},
		redacttest.Finding{Where: db + ".t.f", Secret: 1, Len: len(stripeKey), Rows: 1},
		redacttest.Finding{Where: db + ".t.n", Secret: 0, Len: 10, Rows: 1},
		redacttest.Finding{Where: db + ".t.s", Secret: 0, Len: len(neonKey), Rows: 2})

	empty := chtest.Database(t, conn)
	if err := conn.Exec(ctx, "CREATE DATABASE "+empty); err != nil {
		t.Fatal(err)
	}
	if _, err := redacttest.ScanClickHouse(ctx, conn, empty, neonKey); err == nil {
		t.Error("a database without String columns must fail the scan: it proves nothing")
	}
}
