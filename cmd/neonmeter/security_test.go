package main

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/redact/redacttest"
	"github.com/neonmeter/neonmeter/internal/stripefake"
	"github.com/neonmeter/neonmeter/neon/sim"
)

// The keys of the security tests.
const (
	secNeonKey   = "napi_SEC_0123456789abcdefXY"
	secStripeKey = "sk_test_SEC_9876543210zyxwvu"
	secOrgKey    = "napi_ORGSEC_55554444333322"
)

var secKeys = []string{secNeonKey, secStripeKey, secOrgKey}

// mustFind is the test of a test: a scan given a deliberate leak must report it, or a scan
// finding nothing elsewhere proves nothing.
func mustFind(t *testing.T, what string, f []redacttest.Finding, where string) {
	t.Helper()
	for _, x := range f {
		if strings.HasPrefix(x.Where, where) {
			return
		}
	}
	t.Errorf("%s: the scan missed a deliberate leak at %s (found %v)", what, where, f)
}

// clean fails the test with every finding of a scan.
func clean(t *testing.T, what string, f []redacttest.Finding, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(f) > 0 {
		t.Errorf("%s leaks a key:\n%s", what, redacttest.Failures(f))
	}
}

func TestMain(m *testing.M) { crashtest.Main(m, securityChild) }

// childScenario says what securityChild does.
type childScenario struct{ Scenario string }

// leakyValue is what the panics of the child carry: an error quoting an upstream's answer
// with both keys, as a careless panic(err) would.
func leakyValue() error {
	return fmt.Errorf("upstream answered %q", "Authorization: Bearer "+os.Getenv("NEONMETER_NEON_API_KEY")+" / "+os.Getenv("NEONMETER_STRIPE_API_KEY"))
}

// panicCommand is a command whose work panics with leakyValue.
type panicCommand struct{}

func (panicCommand) Synopsis() string                          { return "panics" }
func (panicCommand) Run(ctx context.Context, _ []string) error { panic(leakyValue()) }

// securityChild runs in a child process: a command that panics ("command"), a serve cycle
// whose steps panic on the cycle's own goroutine, as cron runs them ("serve"), or a bare panic
// on a goroutine nothing guards ("unguarded", the test of the test).
func securityChild() error {
	var sc childScenario
	if err := crashtest.Settings(&sc); err != nil {
		return err
	}
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	switch sc.Scenario {
	case "command":
		os.Exit(m.exec(context.Background(), "collect", panicCommand{}, nil))
	case "serve":
		return panickingCycle()
	case "unguarded":
		go func() { panic(leakyValue()) }()
		select {} // the panic ends the process
	}
	return fmt.Errorf("unknown scenario %q", sc.Scenario)
}

// panickingCycle runs one serve cycle whose steps before and after the sweep panic, then prints
// /healthz: serve must survive with both steps counted failed.
func panickingCycle() error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr}
	reg := prometheus.NewRegistry()
	d := newDaemon(env.logger(cfg), nil, reg)
	d.red, d.deadline, d.interval = cfg.redactor(), time.Hour, time.Hour
	boom := func(context.Context) error { panic(leakyValue()) }
	d.before = []step{{name: "accounts_sync", run: boom}}
	d.after = []step{{name: "billing_push", run: boom}}
	done := make(chan struct{})
	go func() { defer close(done); d.cycle(context.Background(), context.Background()) }()
	<-done
	rec := httptest.NewRecorder()
	d.healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	failed := testutil.ToFloat64(d.steps.WithLabelValues("billing_push", "failure"))
	fmt.Printf("survived: billing_push failures %v, healthz %d %s", failed, rec.Code, rec.Body)
	return nil
}

// A panic whose value quotes both keys — in a command, and in serve's steps on the goroutine
// cron runs them on — prints no key prefix: it is recovered at the command's and the step's
// boundary and logged through the redacting handler; a command exits 1 (not Go's 2, which means
// bad usage here), serve counts the step failed and goes on. The unguarded child shows the
// check would see a leak.
func TestPanic_KeyInPanicValueNeverPrinted(t *testing.T) {
	env := []string{"NEONMETER_NEON_API_KEY=" + secNeonKey, "NEONMETER_STRIPE_API_KEY=" + secStripeKey, "NEONMETER_LOG_FORMAT=json"}
	cases := []struct {
		scenario string
		exit     int
		want     []string
	}{
		{"command", exitFailure, []string{`"msg":"command failed"`, "panic: upstream answered", "Bearer " + redact.Placeholder, "goroutine "}},
		{"serve", 0, []string{`"msg":"step failed"`, `"step":"accounts_sync"`, `"step":"billing_push"`, "billing_push failures 1", "Bearer " + redact.Placeholder}},
		{"unguarded", 2, []string{"panic: upstream answered"}},
	}
	for _, tc := range cases {
		c := crashtest.StartWith(t, childScenario{tc.scenario}, env...)
		exited, err := c.Exited(time.Minute)
		if !exited {
			c.Kill()
			t.Fatalf("%s: the child did not end", tc.scenario)
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		out := c.Output()
		if code != tc.exit {
			t.Errorf("%s: exit %d, want %d\n%s", tc.scenario, code, tc.exit, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.scenario, w, out)
			}
		}
		f := redacttest.ScanText(tc.scenario, out, secKeys...)
		if tc.scenario == "unguarded" {
			mustFind(t, "unguarded panic", f, "unguarded:")
			continue
		}
		clean(t, tc.scenario+" output", f, nil)
	}
}

// net/http recovers a handler's panic and logs its value: serve's server logs it through the
// redacting handler instead of the standard logger on stderr.
func TestPanic_HTTPHandlerPanicLoggedRedacted(t *testing.T) {
	clearEnv(t)
	t.Setenv("NEONMETER_NEON_API_KEY", secNeonKey)
	t.Setenv("NEONMETER_STRIPE_API_KEY", secStripeKey)
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := (&Env{Stderr: &lockedWriter{w: &logs}}).logger(cfg)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = httpServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(fmt.Errorf("bad request with Authorization: Bearer %s", secStripeKey))
	}), log)
	ts.Start()
	defer ts.Close()
	if resp, err := http.Get(ts.URL); err == nil {
		resp.Body.Close()
	}
	ts.Close() // waits for the handler's goroutine, which logs
	if !strings.Contains(logs.String(), "http: panic serving") || !strings.Contains(logs.String(), redact.Placeholder) {
		t.Fatalf("the panic was not logged through the redacting logger:\n%s", logs.String())
	}
	clean(t, "http server log", redacttest.ScanText("log", logs.String(), secKeys...), nil)
}

// The scans see a key that the real logger writes with redaction bypassed (a configuration
// without the key) and a key the product's own store writes into a row (the collector's store
// without the redacting wrapper), and nothing once the redaction is in place.
func TestScans_FindDeliberateLeaksThroughRealWriters(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for _, c := range []struct {
		file string
		cfg  Config
	}{{"bypassed.log", Config{LogFormat: "json", LogLevel: "info"}}, {"redacted.log", Config{LogFormat: "json", LogLevel: "info", NeonAPIKey: secNeonKey}}} {
		f, err := os.Create(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		(&Env{Stderr: f}).logger(c.cfg).Error("sweep failed", "err", errors.New("echo Bearer "+secNeonKey))
		f.Close()
	}
	f, err := redacttest.ScanDir(dir, secKeys...)
	if err != nil {
		t.Fatal(err)
	}
	mustFind(t, "log file", f, filepath.Join(dir, "bypassed.log")+":1")
	if len(f) != 1 {
		t.Errorf("want only the bypassed log line, got:\n%s", redacttest.Failures(f))
	}

	conn, db := chtest.New(t)
	ctx := context.Background()
	r := redact.New(secKeys...)
	now := time.Now().UTC().Truncate(time.Second)
	run := func(id string) collector.Run {
		return collector.Run{RunID: id, OrgID: "org-sec", Endpoint: collector.EndpointV2, Granularity: collector.GranularityHourly,
			WindowFrom: now.Add(-time.Hour), WindowTo: now, StartedAt: now, FinishedAt: now, Outcome: collector.OutcomeFailed,
			Error: "neon api: Bearer " + secNeonKey}
	}
	store := collectorstore.New(conn, db)
	if err := (redactedRuns{store, r}).WriteRun(ctx, run("run-redacted")); err != nil {
		t.Fatal(err)
	}
	f, err = redacttest.ScanClickHouse(ctx, conn, db, secKeys...)
	clean(t, "rows written through the redacting store", f, err)
	if err := store.WriteRun(ctx, run("run-bypassed")); err != nil {
		t.Fatal(err)
	}
	f, err = redacttest.ScanClickHouse(ctx, conn, db, secKeys...)
	if err != nil {
		t.Fatal(err)
	}
	mustFind(t, "ClickHouse row", f, db+".collection_runs.error")
}

// keyFiles writes each key to a file of mode 0600 and returns their paths.
func keyFiles(t *testing.T, keys map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for name, key := range keys {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

// `config` prints every setting: with the keys given directly, through *_FILE settings and
// per-org key files, and with settings it refuses, neither its output nor its errors hold a key.
func TestConfig_OutputHoldsNoKey(t *testing.T) {
	ctx := context.Background()
	files := keyFiles(t, map[string]string{"neon": secNeonKey, "stripe": secStripeKey, "org": secOrgKey})
	var all strings.Builder
	configRun := func(want int) {
		t.Helper()
		code, out, errOut := run(t, ctx, "config")
		fmt.Fprintf(&all, "%s%s", out, errOut)
		if code != want {
			t.Fatalf("config: exit %d, want %d\n%s%s", code, want, out, errOut)
		}
	}
	configEnv(t)
	t.Setenv("NEONMETER_NEON_API_KEY", secNeonKey)
	t.Setenv("NEONMETER_STRIPE_API_KEY", secStripeKey)
	t.Setenv("NEONMETER_PLANS_FILE", exampleCatalog)
	configRun(exitOK)

	configEnv(t)
	os.Unsetenv("NEONMETER_NEON_API_KEY")
	os.Unsetenv("NEONMETER_NEON_ORG_ID")
	t.Setenv("NEONMETER_NEON_API_KEY_FILE", files["neon"])
	t.Setenv("NEONMETER_STRIPE_API_KEY_FILE", files["stripe"])
	t.Setenv("NEONMETER_NEON_ORG_IDS", "org-a,org-b")
	t.Setenv("NEONMETER_NEON_ORG_KEY_FILES", "org-b="+files["org"])
	t.Setenv("NEONMETER_PLANS_FILE", exampleCatalog)
	configRun(exitOK)
	t.Setenv("NEONMETER_LOG_LEVEL", "loud") // a refused setting: the error path prints too
	t.Setenv("NEONMETER_NEON_API_URL", "ftp://"+secNeonKey)
	configRun(exitUsage)

	out := all.String()
	if strings.Count(out, redact.Placeholder) < 4 || !strings.Contains(out, files["org"]) {
		t.Errorf("config did not show the keys as set (redacted) and the org key file:\n%s", out)
	}
	f := redacttest.ScanText("config", out, secKeys...)
	// The refused URL quotes what it was given: the one place the operator put a key by mistake.
	for _, x := range f {
		if !strings.Contains(x.Context, "ftp://") {
			t.Errorf("config leaks a key: %v", x)
		}
	}
	mustFind(t, "config's own echo of a refused setting", f, "config:")
}

// Only NEONMETER_-prefixed variables are read: the bare names other tools use (NEON_API_KEY,
// STRIPE_API_KEY, their _FILE forms, CLICKHOUSE_PASSWORD, NEON_ORG_ID) are ignored, so a key
// meant for another program is never sent, and commands say which setting is missing.
func TestConfig_UnprefixedKeysIgnored(t *testing.T) {
	clearEnv(t)
	files := keyFiles(t, map[string]string{"neon": secNeonKey, "stripe": secStripeKey})
	for k, v := range map[string]string{
		"NEON_API_KEY": secNeonKey, "STRIPE_API_KEY": secStripeKey, "NEON_API_KEY_FILE": files["neon"],
		"STRIPE_API_KEY_FILE": files["stripe"], "CLICKHOUSE_PASSWORD": "bare-password", "NEON_ORG_ID": "org-bare",
		"NEON_ORG_KEY_FILES": "org-bare=" + files["neon"], "ALLOW_INSECURE_KEY_FILES": "true",
	} {
		t.Setenv(k, v)
	}
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.NeonAPIKey != "" || c.StripeAPIKey != "" || c.ClickHousePass != "" || c.NeonOrgID != "" || c.NeonAPIKeyFile != "" ||
		c.StripeAPIKeyFile != "" || len(c.NeonOrgKeys.paths) != 0 || c.AllowInsecureFiles {
		t.Fatalf("bare variables were read: %+v", c)
	}
	code, _, errOut := run(t, context.Background(), "collect")
	if code != exitUsage || !strings.Contains(errOut, "NEONMETER_NEON_API_KEY") || !strings.Contains(errOut, "NEONMETER_NEON_ORG_ID") {
		t.Errorf("collect with only bare variables: exit %d, want %d naming the prefixed settings: %q", code, exitUsage, errOut)
	}
}

// Key files readable by others (or by a group the process is not in) are refused, naming the
// setting and the file, for every kind of key file, per-org ones included; with
// NEONMETER_ALLOW_INSECURE_KEY_FILES they are read with a warning that names the file and
// holds no key.
func TestConfig_LooseKeyFilesRefusedOrWarned(t *testing.T) {
	ctx := context.Background()
	for _, setting := range []string{"NEONMETER_NEON_API_KEY_FILE", "NEONMETER_STRIPE_API_KEY_FILE", "NEONMETER_CLICKHOUSE_PASSWORD_FILE", "NEONMETER_NEON_ORG_KEY_FILES"} {
		for _, mode := range []os.FileMode{0o644, 0o604, 0o660} {
			configEnv(t)
			p := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(p, []byte(secOrgKey), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, -1, 65534); err != nil && mode&0o004 == 0 {
				continue // 0660 is loose only with a group the process is not in
			}
			value := p
			switch setting {
			case "NEONMETER_NEON_ORG_KEY_FILES":
				os.Unsetenv("NEONMETER_NEON_ORG_ID")
				t.Setenv("NEONMETER_NEON_ORG_IDS", "org-a,org-b")
				value = "org-b=" + p
			case "NEONMETER_NEON_API_KEY_FILE":
				os.Unsetenv("NEONMETER_NEON_API_KEY")
			case "NEONMETER_STRIPE_API_KEY_FILE":
				t.Setenv("NEONMETER_PLANS_FILE", exampleCatalog)
			}
			t.Setenv(setting, value)
			code, out, errOut := run(t, ctx, "config")
			if code != exitUsage || !strings.Contains(errOut, setting) || !strings.Contains(errOut, p) || !strings.Contains(errOut, "NEONMETER_ALLOW_INSECURE_KEY_FILES") {
				t.Errorf("%s mode %04o: exit %d, want %d naming the setting, file and override; stderr %q", setting, mode, code, exitUsage, errOut)
			}
			t.Setenv("NEONMETER_ALLOW_INSECURE_KEY_FILES", "true")
			code, out2, errOut2 := run(t, ctx, "config")
			if code != exitOK || !strings.Contains(out2, "warning: "+setting) || !strings.Contains(out2, p) {
				t.Errorf("%s mode %04o allowed: exit %d, want 0 with a warning naming it\n%s%s", setting, mode, code, out2, errOut2)
			}
			clean(t, setting+" output", redacttest.ScanText("config", out+errOut+out2+errOut2, secKeys...), nil)
		}
	}
}

// serve's routes — /metrics, /healthz, /livez, /readyz — with every key set and both upstreams
// echoing them, show no key prefix; /healthz does show the failed sweep's redacted echo (so the
// check proves something), and so do the rows and serve's log.
func TestServe_RoutesHoldNoKey(t *testing.T) {
	s, db := simEnvKey(t, 30, secNeonKey)
	fake, fakeURL, _ := proStripe(t, secStripeKey, "Sec", s.Orgs()[1].ProjectIDs[:2])
	for k, v := range map[string]string{
		"NEONMETER_PLANS_FILE": exampleCatalog, "NEONMETER_STRIPE_API_KEY": secStripeKey, "NEONMETER_STRIPE_API_URL": fakeURL,
		"NEONMETER_NEON_MAX_RETRIES": "1", "NEONMETER_LOG_LEVEL": "debug", "NEONMETER_STRIPE_TIMEOUT": "10s",
	} {
		t.Setenv(k, v)
	}
	fake.Inject(stripefake.Fault{Status: 400, Times: 1 << 20, EchoAuthorization: true})
	s.SetFaults(sim.Faults{Rate500: 1, EchoAuthOffset: 40})
	bodies, logs := serveUntilFailedCycle(t, "/healthz", "/livez", readyzPath, "/metrics")
	if !strings.Contains(bodies["/healthz"], "Bearer "+redact.Placeholder) || !strings.Contains(bodies["/metrics"], "neonmeter_serve_steps_total") {
		t.Fatalf("serve never showed a failed sweep with the redacted echo, so the check proves nothing:\n%v\n%s", bodies, logs)
	}
	for route, body := range bodies {
		clean(t, route, redacttest.ScanText(route, body, secKeys...), nil)
	}
	clean(t, "serve's log", redacttest.ScanText("serve", logs, secKeys...), nil)
	f, err := redacttest.ScanClickHouse(context.Background(), chtest.Connect(t), db, secKeys...)
	clean(t, "ClickHouse", f, err)
}

// serveUntilFailedCycle runs serve on a free address until /healthz reports a failed cycle (or
// 60 s pass), reading routes (the first of them /healthz) on every poll, and returns the body
// each route gave last and serve's log: the tests whose upstreams echo a key look there for it.
func serveUntilFailedCycle(t *testing.T, routes ...string) (map[string]string, string) {
	t.Helper()
	addr := crashtest.FreeAddr(t)
	t.Setenv("NEONMETER_LISTEN_ADDR", addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var logs strings.Builder
	errOut := &lockedWriter{w: &logs}
	go func() { done <- (&Main{Stdout: io.Discard, Stderr: errOut}).Run(ctx, []string{"serve"}) }()
	bodies := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !strings.Contains(bodies["/healthz"], "failed"); time.Sleep(100 * time.Millisecond) {
		for _, route := range routes {
			if b, err := httpGet("http://" + addr + route); err == nil {
				bodies[route] = string(b)
			}
		}
	}
	cancel()
	<-done
	errOut.mu.Lock()
	defer errOut.mu.Unlock()
	return bodies, logs.String()
}

func httpGet(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// The guards above cover the goroutines of commands, serve's cycles, fleet cycles and HTTP
// handlers; a stage's own worker goroutines are not guarded. What keeps a key out of a panic
// there is that no code of the binary panics with a value other than a constant string (the
// runtime's own panics carry no text from outside).
func TestBinary_PanicsCarryOnlyConstantStrings(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "\t")
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "github.com/neonmeter/neonmeter") {
			continue
		}
		for _, name := range strings.Split(parts[2], ",") {
			path := filepath.Join(parts[1], name)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "panic" && len(call.Args) == 1 {
					if lit, ok := call.Args[0].(*ast.BasicLit); !ok || lit.Kind != token.STRING {
						t.Errorf("%s: panic with a value that is not a constant string", path)
					}
				}
				return true
			})
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files of the binary checked", checked)
	}
}
