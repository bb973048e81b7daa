package deploy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/crashtest"
)

// dependsOn is a service's depends_on, in either of compose's spellings; conditions by service.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	var list []string
	if n.Decode(&list) == nil {
		for _, s := range list {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct{ Condition string }
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

type composeDeps struct {
	Services map[string]struct {
		DependsOn dependsOn `yaml:"depends_on"`
	} `yaml:"services"`
}

// oneShots returns the services that must complete before name starts, dependencies first.
func oneShots(c composeDeps, name string) []string {
	var out []string
	for dep, cond := range c.Services[name].DependsOn {
		if cond != "service_completed_successfully" {
			continue
		}
		for _, d := range append(oneShots(c, dep), dep) {
			if !strings.Contains(strings.Join(out, " ")+" ", d+" ") {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestCompose_LoopOnLocalServices runs the stack's own neonmeter commands (its one-shot
// services in dependency order, then serve), with their settings, secrets' examples and mounted
// files, against this machine's ClickHouse and stripe-mock and the simulator started with the
// stack's flags: serve's first cycle collects, bills to stripe-mock and plans enforcement.
// What it cannot check without an engine: the images themselves and current ClickHouse.
func TestCompose_LoopOnLocalServices(t *testing.T) {
	c := loadCompose(t)
	var deps composeDeps
	decodeYAML(t, filepath.Join(composeDir, "docker-compose.yml"), &deps)
	bin := crashtest.Build(t, "../cmd/neonmeter", "../cmd/neonsim")
	env := localEnv(t, c, startSim(t, filepath.Join(bin, "neonsim"), c.Services["neonsim"].Command))
	steps := oneShots(deps, "neonmeter")
	if len(steps) != 3 {
		t.Fatalf("serve waits for %v: want migrate, billing setup and accounts import", steps)
	}
	for _, name := range steps {
		s := c.Services[name]
		cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "neonmeter"), localArgs(t, s)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("service %s (%v): %v\n%s", name, s.Command, err, out)
		}
	}
	serveLoop(t, filepath.Join(bin, "neonmeter"), localArgs(t, c.Services["neonmeter"]), env)
}

// localEnv is serve's compose environment pointed at this machine's services: the secrets'
// examples (private copies), the mounted files' sources, a database of this test.
func localEnv(t *testing.T, c composeFile, simURL string) []string {
	t.Helper()
	s := c.Services["neonmeter"]
	mock := os.Getenv("NEONMETER_TEST_STRIPE_MOCK_URL")
	if mock == "" {
		mock = "http://127.0.0.1:12111"
	}
	local := map[string]string{
		"NEONMETER_NEON_API_URL":             simURL,
		"NEONMETER_CLICKHOUSE_ADDR":          chtest.Addr(),
		"NEONMETER_CLICKHOUSE_DATABASE":      chtest.Database(t, chtest.Connect(t)),
		"NEONMETER_CLICKHOUSE_USER":          "default", // make clickhouse's server: no password
		"NEONMETER_CLICKHOUSE_PASSWORD_FILE": "",
		"NEONMETER_STRIPE_API_URL":           mock,
		"NEONMETER_LISTEN_ADDR":              crashtest.FreeAddr(t),
		"NEONMETER_LOG_FORMAT":               "text",
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Environment {
		if l, ok := local[k]; ok {
			v = l
		} else if sec, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			v = privateCopy(t, filepath.Join(composeDir, c.Secrets[sec].File)+".example")
		} else if strings.HasPrefix(v, "/etc/") {
			v = s.hostPath(t, v)
		}
		env = append(env, k+"="+v)
	}
	return env
}

// localArgs is a service's command with paths inside the container replaced by their sources.
func localArgs(t *testing.T, s composeService) []string {
	args := append([]string(nil), s.Command...)
	for i, a := range args {
		if strings.HasPrefix(a, "/etc/") {
			args[i] = s.hostPath(t, a)
		}
	}
	return args
}

// startSim runs the simulator with the stack's flags on a loopback port; it returns the base URL.
func startSim(t *testing.T, bin string, args []string) string {
	t.Helper()
	args = append([]string(nil), args...)
	for i := range args {
		if i > 0 && args[i-1] == "--addr" {
			args[i] = "127.0.0.1:0"
		}
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`base URL (http://\S+/api/v2)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("neonsim %v printed %q (%v)", args, line, err)
	}
	go io.Copy(io.Discard, stdout)
	return m[1]
}

// serveLoop runs serve until its first cycle has swept, pushed to stripe-mock and planned
// enforcement, then stops it as compose does (SIGTERM) and expects exit 0.
func serveLoop(t *testing.T, bin string, args, env []string) {
	t.Helper()
	var listen string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "NEONMETER_LISTEN_ADDR="); ok {
			listen = v
		}
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("serve's log:\n%s", b)
		}
	}()
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^neonmeter_collect_runs_total\{endpoint="v2",result="success"\} [1-9]`),
		regexp.MustCompile(`(?m)^neonmeter_billing_pushes_total\{outcome="pushed",sink="meter"\} [1-9]`),
		regexp.MustCompile(`(?m)^neonmeter_enforcement_project_over_limit\{`),
	}
	metrics := waitFor(t, "http://"+listen+"/metrics", 90*time.Second, want)
	for _, re := range want {
		if !re.MatchString(metrics) {
			t.Errorf("serve's first cycle did not show %s", re)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
}

// waitFor polls url until its body matches every pattern or the timeout passes; it returns the
// last body.
func waitFor(t *testing.T, url string, timeout time.Duration, want []*regexp.Regexp) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	body := ""
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			matched := 0
			for _, re := range want {
				if re.MatchString(body) {
					matched++
				}
			}
			if matched == len(want) {
				return body
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return body
}
