package deploy

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/neonmeter/neonmeter/plans"
)

const (
	kubeBase    = "kubernetes/base"
	kubeExample = "kubernetes/overlays/example"
)

// The Prometheus Operator's CRDs, as far as the manifests use them: decoded strictly, a field
// the operator does not know fails here rather than in the cluster.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
		Selector metav1.LabelSelector `json:"selector"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            ruleGroups        `json:"spec"`
}

// ruleGroups is both a rules file and a PrometheusRule's spec.
type ruleGroups struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// rendered is one kustomize build, every document decoded strictly into its API type.
type rendered struct {
	deployment    *appsv1.Deployment
	service       *corev1.Service
	pdb           *policyv1.PodDisruptionBudget
	netpol        *networkingv1.NetworkPolicy
	configMaps    map[string]*corev1.ConfigMap // by name without the generator's hash
	monitor       *serviceMonitor
	rule          *prometheusRule
	kinds         []string
	serviceAcct   *corev1.ServiceAccount
	namespaceObjs []*corev1.Namespace
}

// kustomize renders dir in process with kustomize's own library (the version go.mod pins, the
// same v5 that `kubectl kustomize` embeds), so the test needs no tool: Debian 12's kubectl
// (1.20) embeds kustomize v2, which cannot read these files.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeStrict decodes one YAML document, refusing unknown and duplicate fields.
func decodeStrict(t *testing.T, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("decode %T strictly: %v\n%s", v, err, doc)
	}
}

// decodeAs decodes one YAML document strictly into a new T.
func decodeAs[T any](t *testing.T, doc []byte) *T {
	t.Helper()
	v := new(T)
	decodeStrict(t, doc, v)
	return v
}

func render(t *testing.T, dir string) rendered {
	t.Helper()
	r := rendered{configMaps: map[string]*corev1.ConfigMap{}}
	for _, doc := range bytes.Split(kustomize(t, dir), []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		r.kinds = append(r.kinds, tm.APIVersion+"/"+tm.Kind)
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			r.namespaceObjs = append(r.namespaceObjs, decodeAs[corev1.Namespace](t, doc))
		case "v1/ServiceAccount":
			r.serviceAcct = decodeAs[corev1.ServiceAccount](t, doc)
		case "v1/ConfigMap":
			cm := decodeAs[corev1.ConfigMap](t, doc)
			r.configMaps[unhashed(cm.Name)] = cm
		case "v1/Service":
			r.service = decodeAs[corev1.Service](t, doc)
		case "apps/v1/Deployment":
			r.deployment = decodeAs[appsv1.Deployment](t, doc)
		case "policy/v1/PodDisruptionBudget":
			r.pdb = decodeAs[policyv1.PodDisruptionBudget](t, doc)
		case "networking.k8s.io/v1/NetworkPolicy":
			r.netpol = decodeAs[networkingv1.NetworkPolicy](t, doc)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			r.monitor = decodeAs[serviceMonitor](t, doc)
		case "monitoring.coreos.com/v1/PrometheusRule":
			r.rule = decodeAs[prometheusRule](t, doc)
		default:
			t.Fatalf("%s renders a %s/%s the test does not decode: add its type", dir, tm.APIVersion, tm.Kind)
		}
	}
	if r.deployment == nil || r.service == nil || r.pdb == nil || r.netpol == nil || r.monitor == nil || r.rule == nil || r.serviceAcct == nil {
		t.Fatalf("%s lacks an object; rendered %v", dir, r.kinds)
	}
	return r
}

// generatorHash is the -<hash> suffix kustomize's generators append (10 characters of its
// vowel-free alphabet, so "-dashboards" is not one).
var generatorHash = regexp.MustCompile(`-[2456789bcdfghkmt]{10}$`)

// unhashed drops the generator's suffix from a name.
func unhashed(name string) string { return generatorHash.ReplaceAllString(name, "") }

func (r rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "neonmeter" {
		t.Fatalf("the Deployment runs %d containers, want the neonmeter one", len(cs))
	}
	return cs[0]
}

// configSettings reads Config's settings from cmd/neonmeter/config.go with go/ast (package
// main cannot be imported): NEONMETER_ variable name → default.
func configSettings(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "neonmeter", "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(field.Tag.Value)
			st := reflect.StructTag(tag)
			if name := st.Get("envconfig"); name != "" {
				out["NEONMETER_"+name] = st.Get("default")
			}
		}
		return false
	})
	if _, ok := out["NEONMETER_LISTEN_ADDR"]; !ok || len(out) < 30 {
		t.Fatalf("read %d settings from config.go's Config; the parser no longer matches it", len(out))
	}
	return out
}

// mainConsts maps the names of cmd/neonmeter's constants (pkg is parseMain's) to their string
// values.
func mainConsts(pkg ast.Node) map[string]string {
	consts := map[string]string{}
	ast.Inspect(pkg, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok && len(v.Names) == 1 && len(v.Values) == 1 {
			consts[v.Names[0].Name] = stringLit(v.Values[0], nil)
		}
		return true
	})
	return consts
}

// serveRoutes lists the literal or constant paths cmd/neonmeter (pkg is parseMain's) registers
// on a mux.
func serveRoutes(pkg ast.Node) []string {
	consts := mainConsts(pkg)
	var routes []string
	ast.Inspect(pkg, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && len(c.Args) == 2 {
			if sel, ok := c.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") {
				routes = append(routes, stringLit(c.Args[0], consts))
			}
		}
		return true
	})
	return routes
}

// The example overlay renders and every document decodes strictly into its Kubernetes type.
func TestKubernetes_RendersAndDecodesStrictly(t *testing.T) {
	r := render(t, kubeExample)
	d := r.deployment
	if d.Namespace != "neonmeter" || len(r.namespaceObjs) != 1 || r.namespaceObjs[0].Name != d.Namespace {
		t.Errorf("the example overlay puts the Deployment in %q and creates namespaces %v", d.Namespace, r.namespaceObjs)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2 (leases make several safe)", d.Spec.Replicas)
	}
	if img := r.container(t).Image; !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
		t.Errorf("the example overlay runs image %q, want a pinned tag", img)
	}
	if r.serviceAcct.AutomountServiceAccountToken == nil || *r.serviceAcct.AutomountServiceAccountToken {
		t.Error("the ServiceAccount mounts an API token serve never uses")
	}
}

// Every selector selects serve's pods, and the PDB leaves one of the replicas running.
func TestKubernetes_SelectorsAndDisruptionBudget(t *testing.T) {
	r := render(t, kubeExample)
	pod := labels.Set(r.deployment.Spec.Template.Labels)
	check := func(what string, ls *metav1.LabelSelector) {
		t.Helper()
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || sel.Empty() || !sel.Matches(pod) {
			t.Errorf("%s's selector %v does not select serve's pods %v (%v)", what, ls, pod, err)
		}
	}
	check("Deployment", r.deployment.Spec.Selector)
	check("PodDisruptionBudget", r.pdb.Spec.Selector)
	check("NetworkPolicy", &r.netpol.Spec.PodSelector)
	check("ServiceMonitor", &r.monitor.Spec.Selector)
	if sel := labels.SelectorFromSet(r.service.Spec.Selector); sel.Empty() || !sel.Matches(pod) {
		t.Errorf("the Service's selector %v does not select serve's pods %v", r.service.Spec.Selector, pod)
	}
	if m := r.pdb.Spec.MinAvailable; m == nil || m.IntValue() < 1 || int32(m.IntValue()) >= *r.deployment.Spec.Replicas {
		t.Errorf("PDB minAvailable %v with %d replicas: a drain must be able to take one and never all", m, *r.deployment.Spec.Replicas)
	}
}

// Every NEONMETER_ variable set (directly or through the settings ConfigMap) is a setting of
// Config; every *_FILE and the plan catalog live in a mounted volume that holds them.
func TestKubernetes_SettingsAreReal(t *testing.T) {
	r := render(t, kubeExample)
	settings := configSettings(t)
	c := r.container(t)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("envFrom %v: only ConfigMaps are expected", ef)
		}
		cm, ok := r.configMaps[unhashed(ef.ConfigMapRef.Name)]
		if !ok {
			t.Fatalf("envFrom names ConfigMap %s, which is not rendered", ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for k := range env {
		if _, ok := settings[k]; !ok && strings.HasPrefix(k, "NEONMETER_") {
			t.Errorf("%s is not a setting of cmd/neonmeter/config.go's Config", k)
		}
	}
	for _, k := range []string{"NEONMETER_NEON_API_KEY_FILE", "NEONMETER_CLICKHOUSE_PASSWORD_FILE", "NEONMETER_STRIPE_API_KEY_FILE", "NEONMETER_PLANS_FILE"} {
		if env[k] == "" {
			t.Errorf("the example sets no %s", k)
			continue
		}
		if vol := mountedKey(t, r, c, env[k]); vol == nil {
			t.Errorf("%s=%s is in no mounted volume holding that key", k, env[k])
		}
	}
	for _, k := range []string{"NEONMETER_NEON_API_KEY", "NEONMETER_STRIPE_API_KEY", "NEONMETER_CLICKHOUSE_PASSWORD"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s is set inline: secrets go through files from the Secret", k)
		}
	}
}

// mountedKey returns the volume holding file (a secret's or ConfigMap's key at its mount), nil
// when none does. A Secret without items holds whatever keys it is created with.
func mountedKey(t *testing.T, r rendered, c corev1.Container, file string) *corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		dir, key := filepath.Split(file)
		if filepath.Clean(dir) != filepath.Clean(m.MountPath) {
			continue
		}
		for i, v := range r.deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.Secret != nil:
				return &r.deployment.Spec.Template.Spec.Volumes[i]
			case v.ConfigMap != nil:
				if cm := r.configMaps[unhashed(v.ConfigMap.Name)]; cm != nil && cm.Data[key] != "" {
					return &r.deployment.Spec.Template.Spec.Volumes[i]
				}
			}
		}
	}
	return nil
}

// The container port is NEONMETER_LISTEN_ADDR's default port, the address set listens on it,
// and the Service and ServiceMonitor reach it by name.
func TestKubernetes_PortsMatchTheListenAddress(t *testing.T) {
	r := render(t, kubeExample)
	_, defPort, err := net.SplitHostPort(configSettings(t)["NEONMETER_LISTEN_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	c := r.container(t)
	if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != defPort {
		t.Fatalf("container ports %v, want the one NEONMETER_LISTEN_ADDR defaults to (%s)", c.Ports, defPort)
	}
	for _, e := range c.Env {
		if e.Name == "NEONMETER_LISTEN_ADDR" {
			host, port, err := net.SplitHostPort(e.Value)
			if err != nil || port != defPort || (host != "0.0.0.0" && host != "") {
				t.Errorf("NEONMETER_LISTEN_ADDR=%s: want all interfaces on port %s (the default listens on loopback only)", e.Value, defPort)
			}
		}
	}
	name := c.Ports[0].Name
	if sp := r.service.Spec.Ports; len(sp) != 1 || sp[0].TargetPort.String() != name || sp[0].Name != name {
		t.Errorf("Service ports %v, want one named %s targeting the container's", sp, name)
	}
	if ep := r.monitor.Spec.Endpoints; len(ep) != 1 || ep[0].Port != name || ep[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %v, want port %s path /metrics", ep, name)
	}
}

// Probes ask routes serve registers: liveness /livez, readiness /readyz, on the metrics port;
// the kill grace outlasts serve's own shutdown.
func TestKubernetes_ProbesAndShutdown(t *testing.T) {
	r := render(t, kubeExample)
	routes := serveRoutes(parseMain(t))
	c := r.container(t)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/livez"}, {"liveness", c.LivenessProbe, "/livez"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || !slices.Contains(routes, g.Path) || g.Port.String() != c.Ports[0].Name {
			t.Errorf("%s probe asks %s on port %s; want %s, one of serve's routes %v, on %s", p.name, g.Path, g.Port.String(), p.path, routes, c.Ports[0].Name)
		}
	}
	shutdown, err := time.ParseDuration(configSettings(t)["NEONMETER_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatal(err)
	}
	// serve: the shutdown timeout, 15 s for a stopped step to record itself, 5 s for HTTP.
	need := shutdown + 20*time.Second
	if g := r.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %v, want at least %v", g, need)
	}
}

// Non-root, read-only root, no capabilities, no privilege escalation; secrets as files of mode
// 0440 owned by the pod's fsGroup (the key-file check accepts exactly that).
func TestKubernetes_SecurityContext(t *testing.T) {
	r := render(t, kubeExample)
	ps := r.deployment.Spec.Template.Spec.SecurityContext
	sc := r.container(t).SecurityContext
	switch {
	case ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0:
		t.Error("the pod may run as root")
	case ps.FSGroup == nil || ps.RunAsGroup == nil || *ps.FSGroup != *ps.RunAsGroup:
		t.Error("fsGroup must be set (to the process's group) for the 0440 key files to be readable")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation is allowed")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %v, want all dropped", sc.Capabilities)
	}
	secrets := 0
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets++
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
				t.Errorf("secret volume %s: mode %v, want 0440", v.Name, v.Secret.DefaultMode)
			}
		}
	}
	if secrets == 0 {
		t.Error("no secret volume")
	}
	res := r.container(t).Resources
	if res.Requests.Cpu().IsZero() || res.Requests.Memory().IsZero() || res.Limits.Memory().IsZero() || res.Limits.Memory().Cmp(*res.Requests.Memory()) < 0 {
		t.Errorf("resources %v: want CPU and memory requests and a memory limit above the request", res)
	}
}

// Egress only to DNS, ClickHouse and HTTPS (Neon, Stripe) away from private ranges; ingress
// only to the metrics port. The ClickHouse rule selects ClickHouse, not neonmeter (a label
// transformer rewriting peer selectors would break it).
func TestKubernetes_NetworkPolicy(t *testing.T) {
	r := render(t, kubeExample)
	np := r.netpol.Spec
	if !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Fatalf("policy types %v, want Ingress and Egress", np.PolicyTypes)
	}
	var ports []string
	for _, e := range np.Egress {
		for _, p := range e.Ports {
			ports = append(ports, string(*p.Protocol)+"/"+p.Port.String())
		}
		if len(e.To) == 0 {
			t.Errorf("egress rule %v allows every destination", e)
		}
		for _, peer := range e.To {
			if peer.PodSelector != nil && peer.PodSelector.MatchLabels["app.kubernetes.io/name"] == "neonmeter" {
				t.Errorf("an egress peer selects neonmeter itself: %v", peer.PodSelector)
			}
			if b := peer.IPBlock; b != nil && !slices.Contains(b.Except, "10.0.0.0/8") {
				t.Errorf("ipBlock %v lets traffic into private ranges", b)
			}
		}
	}
	slices.Sort(ports)
	if want := []string{"TCP/443", "TCP/53", "TCP/9000", "TCP/9440", "UDP/53"}; !slices.Equal(ports, want) {
		t.Errorf("egress ports %v, want %v", ports, want)
	}
	if len(np.Ingress) != 1 || len(np.Ingress[0].Ports) != 1 || np.Ingress[0].Ports[0].Port.String() != r.container(t).Ports[0].Name {
		t.Errorf("ingress %v, want the metrics port only", np.Ingress)
	}
}

// The base carries no plan catalog (serve then only collects); the example overlay's is the
// example catalog, valid.
func TestKubernetes_CatalogOnlyInTheOverlay(t *testing.T) {
	if _, ok := render(t, kubeBase).configMaps["neonmeter-plans"]; ok {
		t.Error("the base ships a plan catalog; only overlays may")
	}
	cm, ok := render(t, kubeExample).configMaps["neonmeter-plans"]
	if !ok {
		t.Fatal("the example overlay has no neonmeter-plans ConfigMap")
	}
	if _, err := plans.Parse("plans.yaml", []byte(cm.Data["plans.yaml"])); err != nil {
		t.Errorf("the example overlay's catalog: %v", err)
	}
}

// The dashboards ConfigMap carries every dashboards/*.json, unchanged, under the sidecar's label.
func TestKubernetes_DashboardsConfigMap(t *testing.T) {
	cm, ok := render(t, kubeExample).configMaps["neonmeter-dashboards"]
	if !ok {
		t.Fatal("no neonmeter-dashboards ConfigMap")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboards ConfigMap labels %v, want grafana_dashboard=1", cm.Labels)
	}
	files, _ := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if len(files) == 0 || len(files) != len(cm.Data) {
		t.Errorf("ConfigMap holds %d dashboards, dashboards/ %d", len(cm.Data), len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data[filepath.Base(f)] != string(b) {
			t.Errorf("%s differs from the ConfigMap's copy: run go run ./deploy/gen", f)
		}
	}
}

// The PrometheusRule's groups equal the rules file's, and promtool's tests pass against the
// groups as rendered: the operator loads exactly the rules `promtool test rules` tests.
func TestKubernetes_PrometheusRuleIsTheTestedRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	r := render(t, kubeExample)
	var file ruleGroups
	b, err := os.ReadFile(filepath.Join("prometheus", "neonmeter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	decodeStrict(t, b, &file)
	if len(file.Groups) == 0 || !reflect.DeepEqual(file, r.rule.Spec) {
		t.Fatalf("the PrometheusRule's groups differ from deploy/prometheus/neonmeter.rules.yml: run go run ./deploy/gen")
	}
	dir := t.TempDir()
	out, err := yaml.Marshal(r.rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("prometheus", "neonmeter.rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"neonmeter.rules.yml": out, "neonmeter.rules_test.yml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "test", "rules", "neonmeter.rules_test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules against the rendered PrometheusRule: %v\n%s", err, out)
	}
}

// The decoder the tests rely on refuses a misspelt field: a typo in a manifest fails here.
func TestKubernetes_StrictDecodeRefusesUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 2\n  revisionHistoryLimt: 5\n")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(doc, &d); err == nil || !strings.Contains(err.Error(), "revisionHistoryLimt") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}
