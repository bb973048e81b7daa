package deploy

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/neonmeter/neonmeter/accounts"
	"github.com/neonmeter/neonmeter/internal/crashtest"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

var updateCompose = flag.Bool("update", false, "rewrite deploy/compose/accounts.csv from the simulator")

const composeDir = "compose"

// composeFile is the part of docker-compose.yml the tests read (yaml.v3 resolves the anchors
// and merge keys the file uses).
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
}

type composeBuild struct {
	Context string `yaml:"context"`
	Target  string `yaml:"target"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeYAML(t, filepath.Join(composeDir, "docker-compose.yml"), &c)
	for _, name := range []string{"clickhouse", "neonsim", "stripe-mock", "neonmeter", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	return c
}

func decodeYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// requireTool returns the path of a tool the test needs; missing, the test fails (as every test
// of a missing service does): scripts/deps.sh installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: scripts/deps.sh installs it (make deps)", name)
	}
	return p
}

// mount is one bind mount: the host path (relative to the test's directory) and the container's.
type mount struct{ host, container string }

// mounts returns the bind mounts of a service (named volumes are left out).
func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		out = append(out, mount{filepath.Join(composeDir, parts[0]), parts[1]})
	}
	return out
}

// hostPath is the host file behind a container path of the service, through its mounts.
func (s composeService) hostPath(t *testing.T, p string) string {
	t.Helper()
	for _, m := range s.mounts() {
		if rel, err := filepath.Rel(m.container, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(m.host, rel)
		}
	}
	t.Fatalf("%s is mounted from nowhere (volumes %v)", p, s.Volumes)
	return ""
}

// publishedPort returns the host and container port of the service's one published port.
func (s composeService) publishedPort(t *testing.T) (host, container string) {
	t.Helper()
	if len(s.Ports) != 1 {
		t.Fatalf("want one published port, got %v", s.Ports)
	}
	p := strings.Split(s.Ports[0], ":")
	if len(p) != 3 || p[0] != "127.0.0.1" {
		t.Fatalf("port %q: want 127.0.0.1:HOST:CONTAINER (nothing published beyond loopback)", s.Ports[0])
	}
	return p[1], p[2]
}

func TestCompose_ConfigValidates(t *testing.T) {
	dc := requireTool(t, "docker-compose")
	out, err := exec.Command(dc, "-f", filepath.Join(composeDir, "docker-compose.yml"), "config", "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// Every bind-mounted file, build context and target, and secret (its committed example) exists;
// the real secret files stay out of git.
func TestCompose_MountedFilesExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, m := range s.mounts() {
			if _, err := os.Stat(m.host); err != nil {
				t.Errorf("service %s mounts %s: %v", name, m.host, err)
			}
		}
		if s.Build != nil {
			df, err := os.ReadFile(filepath.Join(composeDir, s.Build.Context, "Dockerfile"))
			if err != nil || !regexp.MustCompile(`(?m)^FROM .* AS `+regexp.QuoteMeta(s.Build.Target)+`$`).Match(df) {
				t.Errorf("service %s builds target %q of %s/Dockerfile: no such stage (%v)", name, s.Build.Target, s.Build.Context, err)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("service %s uses undeclared secret %s", name, sec)
			}
		}
	}
	ignore, err := os.ReadFile(filepath.Join(composeDir, "secrets", ".gitignore"))
	if err != nil || !strings.Contains(string(ignore), "\n*\n") {
		t.Errorf("deploy/compose/secrets/.gitignore must ignore the real secret files: %v", err)
	}
	for name, sec := range c.Secrets {
		if _, err := os.Stat(filepath.Join(composeDir, sec.File) + ".example"); err != nil {
			t.Errorf("secret %s: no committed example %s.example: %v", name, sec.File, err)
		}
	}
}

// neonmeterSettings reads the NEONMETER_* variables Config declares (cmd/neonmeter/config.go)
// without importing package main.
func neonmeterSettings(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cmd", "neonmeter", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\t\\w+\\s+[\\w.\\[\\]]+\\s+`envconfig:\"(\\w+)\"").FindAllSubmatch(b, -1) {
		out["NEONMETER_"+string(m[1])] = true
	}
	if !out["NEONMETER_LISTEN_ADDR"] || len(out) < 30 {
		t.Fatalf("read %d settings from config.go; the parser no longer matches Config", len(out))
	}
	return out
}

// Every NEONMETER_ variable the stack sets is a setting; every *_FILE names a secret of the
// service; every file setting is mounted.
func TestCompose_SettingsAreReal(t *testing.T) {
	c := loadCompose(t)
	settings := neonmeterSettings(t)
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if !strings.HasPrefix(k, "NEONMETER_") {
				continue
			}
			if !settings[k] {
				t.Errorf("service %s sets %s, which is no setting of cmd/neonmeter/config.go", name, k)
			}
			if sec, ok := strings.CutPrefix(v, "/run/secrets/"); ok && !slices.Contains(s.Secrets, sec) {
				t.Errorf("service %s: %s=%s is not one of its secrets %v", name, k, v, s.Secrets)
			}
			if k == "NEONMETER_PLANS_FILE" {
				s.hostPath(t, v)
			}
		}
	}
}

// The settings pass neonmeter's own checks (those serve makes before it starts), with the
// secrets' examples and the mounted catalog in place of the container's files.
func TestCompose_NeonmeterConfigAccepted(t *testing.T) {
	c := loadCompose(t)
	s := c.Services["neonmeter"]
	bin := filepath.Join(crashtest.Build(t, "../cmd/neonmeter"), "neonmeter")
	cmd := exec.Command(bin, "config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Environment {
		if sec, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			v = privateCopy(t, filepath.Join(composeDir, c.Secrets[sec].File)+".example")
		} else if k == "NEONMETER_PLANS_FILE" {
			v = s.hostPath(t, v)
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "plan catalog") {
		t.Fatalf("neonmeter config with the compose settings: %v\n%s", err, out)
	}
}

func privateCopy(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// urlHostPort returns the host and port of an http URL, the port defaulted.
func urlHostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		t.Fatalf("URL %q: want http://service:port (%v)", raw, err)
	}
	return u.Hostname(), u.Port()
}

// Each address neonmeter is given is a service of the stack on the port that service listens on,
// and serve listens where it is published and scraped.
func TestCompose_PortsMatch(t *testing.T) {
	c := loadCompose(t)
	env := c.Services["neonmeter"].Environment
	_, listen, err := net.SplitHostPort(env["NEONMETER_LISTEN_ADDR"])
	if err != nil || listen != "9464" {
		t.Errorf("NEONMETER_LISTEN_ADDR=%q: want port 9464 (%v)", env["NEONMETER_LISTEN_ADDR"], err)
	}
	if _, p := c.Services["neonmeter"].publishedPort(t); p != listen {
		t.Errorf("neonmeter publishes %s, listens on %s", p, listen)
	}
	host, port := urlHostPort(t, env["NEONMETER_NEON_API_URL"])
	if simAddr := flagValue(t, c.Services[host].Command, "--addr"); !strings.HasSuffix(simAddr, ":"+port) {
		t.Errorf("NEONMETER_NEON_API_URL port %s, service %s listens on %q", port, host, simAddr)
	}
	host, port = urlHostPort(t, env["NEONMETER_STRIPE_API_URL"])
	if _, p := c.Services[host].publishedPort(t); host != "stripe-mock" || port != "12111" || p != port {
		t.Errorf("NEONMETER_STRIPE_API_URL %s:%s: want stripe-mock:12111, published %s", host, port, p)
	}
	chHost, chPort, _ := net.SplitHostPort(env["NEONMETER_CLICKHOUSE_ADDR"])
	if _, ok := c.Services[chHost]; !ok || chPort != "9000" {
		t.Errorf("NEONMETER_CLICKHOUSE_ADDR=%s: want the clickhouse service's native port 9000", env["NEONMETER_CLICKHOUSE_ADDR"])
	}
	ch := c.Services["clickhouse"].Environment
	if ch["CLICKHOUSE_DB"] != env["NEONMETER_CLICKHOUSE_DATABASE"] || ch["CLICKHOUSE_USER"] != env["NEONMETER_CLICKHOUSE_USER"] {
		t.Errorf("clickhouse creates %s for %s; neonmeter uses %s as %s", ch["CLICKHOUSE_DB"], ch["CLICKHOUSE_USER"],
			env["NEONMETER_CLICKHOUSE_DATABASE"], env["NEONMETER_CLICKHOUSE_USER"])
	}
}

// flagValue returns the value of --name in a command line ("--name value" or "--name=value").
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("command %v has no %s", args, name)
	return ""
}

// The stack's stripe-mock is the version the tests run (scripts/stripe-mock.sh).
func TestCompose_StripeMockVersionMatchesTests(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "scripts", "stripe-mock.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION=(v[\d.]+)$`).FindSubmatch(script)
	img := loadCompose(t).Services["stripe-mock"].Image
	if m == nil || img != "stripe/stripe-mock:"+string(m[1]) {
		t.Fatalf("compose runs %s; the tests run stripe-mock %s", img, m)
	}
}

type promConfig struct {
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// Prometheus loads the repository's rules file, scrapes neonmeter where serve listens, sends to
// the stack's Alertmanager, and promtool accepts the configuration with those rules.
func TestCompose_PrometheusWiring(t *testing.T) {
	c := loadCompose(t)
	prom := c.Services["prometheus"]
	confHost := prom.hostPath(t, "/etc/prometheus/prometheus.yml")
	var pc promConfig
	decodeYAML(t, confHost, &pc)
	rules := filepath.Join("prometheus", "neonmeter.rules.yml")
	if len(pc.RuleFiles) != 1 || filepath.Clean(prom.hostPath(t, path.Join("/etc/prometheus", pc.RuleFiles[0]))) != rules {
		t.Errorf("rule_files %v do not resolve to deploy/%s in the container", pc.RuleFiles, rules)
	}
	_, listen, _ := net.SplitHostPort(c.Services["neonmeter"].Environment["NEONMETER_LISTEN_ADDR"])
	if sc := pc.ScrapeConfigs; len(sc) != 1 || len(sc[0].StaticConfigs) != 1 ||
		!slices.Equal(sc[0].StaticConfigs[0].Targets, []string{"neonmeter:" + listen}) {
		t.Errorf("scrape configs %+v: want one target neonmeter:%s", pc.ScrapeConfigs, listen)
	}
	am := c.Services["alertmanager"]
	if f := am.hostPath(t, flagValue(t, am.Command, "--config.file")); filepath.Clean(f) != filepath.Join("alertmanager", "alertmanager.example.yml") {
		t.Errorf("Alertmanager reads %s, not deploy/alertmanager/alertmanager.example.yml", f)
	}
	_, amPort := am.publishedPort(t)
	if am := pc.Alerting.Alertmanagers; len(am) != 1 || len(am[0].StaticConfigs) != 1 || !slices.Equal(am[0].StaticConfigs[0].Targets, []string{"alertmanager:" + amPort}) {
		t.Errorf("alerting %+v: want alertmanager:%s", am, amPort)
	}
	// promtool resolves rule_files beside the configuration, as Prometheus does in the container.
	promtool := requireTool(t, "promtool")
	dir := t.TempDir()
	for src, dst := range map[string]string{confHost: "prometheus.yml", rules: pc.RuleFiles[0]} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// The accounts the stack imports are the simulated scale org's projects (the simulator's seed
// and size in the compose file), each valid in the example catalog; -update regenerates them.
func TestCompose_AccountsMatchSimulator(t *testing.T) {
	c := loadCompose(t)
	want := simAccounts(t, c)
	file := filepath.Join(composeDir, "accounts.csv")
	if *updateCompose {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != want {
		t.Fatalf("%s differs from the simulator's fleet (go test ./deploy/ -run AccountsMatchSimulator -update): %v", file, err)
	}
	cat, err := plans.Load(filepath.Join("..", "plans", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := accounts.ParseCSV(file, strings.NewReader(want), cat, time.Now())
	if err != nil || len(rows) == 0 {
		t.Fatalf("accounts.csv: %d rows, %v", len(rows), err)
	}
}

// simAccounts gives the compose org's projects to customers, five each, on the example
// catalog's plans in turn (as make demo does).
func simAccounts(t *testing.T, c composeFile) string {
	t.Helper()
	args := c.Services["neonsim"].Command
	var cfg sim.Config
	if _, err := fmt.Sscan(flagValue(t, args, "--projects"), &cfg.Projects); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(flagValue(t, args, "--seed"), &cfg.Seed); err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	org := c.Services["neonmeter"].Environment["NEONMETER_NEON_ORG_ID"]
	var b strings.Builder
	b.WriteString("project_id,customer_id,plan,valid_from\n")
	for _, o := range s.Orgs() {
		if o.ID != org {
			continue
		}
		for i, p := range o.ProjectIDs {
			fmt.Fprintf(&b, "%s,cus_compose_%03d,%s,2020-01-01\n", p, i/5, []string{"free", "pro", "enterprise"}[(i/5)%3])
		}
		return b.String()
	}
	t.Fatalf("the simulator has no org %s (NEONMETER_NEON_ORG_ID)", org)
	return ""
}

type grafanaDatasources struct {
	Datasources []struct {
		Name, Type, UID string
		JSONData        map[string]any    `yaml:"jsonData"`
		SecureJSONData  map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

type grafanaProviders struct {
	Providers []struct {
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// Grafana provisions every dashboard of dashboards/ and a datasource of each type their
// datasource variables ask for; the ClickHouse one reaches neonmeter's database with the secret.
func TestCompose_GrafanaWiring(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["grafana"]
	var ds grafanaDatasources
	decodeYAML(t, g.hostPath(t, "/etc/grafana/provisioning/datasources/datasources.yml"), &ds)
	var dp grafanaProviders
	decodeYAML(t, g.hostPath(t, "/etc/grafana/provisioning/dashboards/neonmeter.yml"), &dp)
	if len(dp.Providers) != 1 || filepath.Clean(g.hostPath(t, dp.Providers[0].Options.Path)) != filepath.Join("..", "dashboards") {
		t.Fatalf("dashboard providers %+v: want one reading the mounted dashboards/", dp.Providers)
	}
	types := map[string]bool{}
	env := c.Services["neonmeter"].Environment
	for _, d := range ds.Datasources {
		types[d.Type] = true
		if d.Type != "grafana-clickhouse-datasource" {
			continue
		}
		if !strings.Contains(g.Environment["GF_INSTALL_PLUGINS"], d.Type) {
			t.Errorf("Grafana does not install the %s plugin", d.Type)
		}
		want := map[string]any{"host": "clickhouse", "port": 9000, "protocol": "native",
			"username": env["NEONMETER_CLICKHOUSE_USER"], "defaultDatabase": env["NEONMETER_CLICKHOUSE_DATABASE"]}
		for k, v := range want {
			if d.JSONData[k] != v {
				t.Errorf("ClickHouse datasource %s=%v, want %v", k, d.JSONData[k], v)
			}
		}
		sec, ok := strings.CutPrefix(d.SecureJSONData["password"], "$__file{/run/secrets/")
		if !ok || !slices.Contains(g.Secrets, strings.TrimSuffix(sec, "}")) {
			t.Errorf("ClickHouse datasource password %q is not one of Grafana's secrets %v", d.SecureJSONData["password"], g.Secrets)
		}
	}
	files, _ := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards/*.json")
	}
	for _, f := range files {
		for _, typ := range dashboardDatasourceTypes(t, f) {
			if !types[typ] {
				t.Errorf("%s asks for a %s datasource; none is provisioned", f, typ)
			}
		}
	}
}

// dashboardDatasourceTypes returns the plugin types a dashboard's panels reach, through its
// datasource variables; a panel naming a uid no variable defines fails the test.
func dashboardDatasourceTypes(t *testing.T, file string) []string {
	t.Helper()
	var d struct {
		Templating struct {
			List []struct{ Name, Type, Query string } `json:"list"`
		} `json:"templating"`
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &d); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			vars["${"+v.Name+"}"] = v.Query
		}
	}
	var out []string
	for _, m := range regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllSubmatch(b, -1) {
		uid := string(m[1])
		if !strings.HasPrefix(uid, "${") {
			continue // the dashboard's own uid
		}
		typ, ok := vars[uid]
		if !ok {
			t.Errorf("%s: a panel uses datasource %s, which is no datasource variable", file, uid)
		}
		if !slices.Contains(out, typ) {
			out = append(out, typ)
		}
	}
	return out
}
