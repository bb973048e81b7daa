package deploy

import (
	"debug/elf"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func readRepo(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerStages splits the Dockerfile (continuation lines joined) into its stages by name.
func dockerStages(t *testing.T) (map[string][]string, []string) {
	t.Helper()
	text := strings.ReplaceAll(readRepo(t, "Dockerfile"), "\\\n", " ")
	stages, order, cur := map[string][]string{}, []string(nil), ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := regexp.MustCompile(`^FROM \S+ AS (\S+)$`).FindStringSubmatch(line); m != nil {
			cur = m[1]
			order = append(order, cur)
		}
		stages[cur] = append(stages[cur], line)
	}
	return stages, order
}

// goBuild finds the one `go build` command among lines and returns its words with the
// variable spellings of make and Docker, the output directory and `$(GO)` made alike.
func goBuild(t *testing.T, where string, lines []string, vars map[string]string) []string {
	t.Helper()
	var found []string
	for _, l := range lines {
		if i := strings.Index(l, "CGO_ENABLED=0"); i >= 0 && strings.Contains(l, " build ") {
			found = append(found, l[i:])
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one CGO_ENABLED=0 go build command, found %q", where, found)
	}
	cmd := found[0]
	for k, v := range vars {
		cmd = strings.ReplaceAll(cmd, k, v)
	}
	cmd = regexp.MustCompile(`(\$\(VERSION\)|\$\{VERSION\})`).ReplaceAllString(cmd, "VERSION")
	cmd = regexp.MustCompile(`-o \S+`).ReplaceAllString(cmd, "-o OUT")
	return strings.Fields(cmd)
}

// The image's binaries are built exactly as `make image-binary` builds them, which CI runs;
// both use the LDFLAGS of `make build`.
func TestImage_BuildCommandMatchesMake(t *testing.T) {
	stages, _ := dockerStages(t)
	mk := readRepo(t, "Makefile")
	ldflags := regexp.MustCompile(`(?m)^LDFLAGS := (.*)$`).FindStringSubmatch(mk)
	recipe := regexp.MustCompile(`(?m)^image-binary:\n((?:\t.*\n)+)`).FindStringSubmatch(mk)
	if ldflags == nil || recipe == nil {
		t.Fatal("Makefile has no LDFLAGS or no image-binary recipe")
	}
	if !regexp.MustCompile(`(?m)^build:\n\t.*-ldflags "\$\(LDFLAGS\)"`).MatchString(mk) {
		t.Error("make build no longer uses $(LDFLAGS)")
	}
	fromMake := goBuild(t, "Makefile image-binary", strings.Split(recipe[1], "\n"),
		map[string]string{"$(LDFLAGS)": ldflags[1], "$(GO)": "go"})
	fromDocker := goBuild(t, "Dockerfile build stage", stages["build"], nil)
	if !slices.Equal(fromMake, fromDocker) {
		t.Fatalf("the image builds\n  %q\nmake image-binary builds\n  %q", fromDocker, fromMake)
	}
	for _, want := range []string{"-trimpath", "./cmd/neonmeter"} {
		if !slices.Contains(fromDocker, want) {
			t.Errorf("the image's build lacks %s", want)
		}
	}
}

// make image-binary gives static binaries (no interpreter, no shared libraries: they run on
// scratch) that carry the version and no path of the build machine.
func TestImage_BinaryIsStatic(t *testing.T) {
	requireTool(t, "make")
	out := t.TempDir() + "/"
	cmd := exec.Command("make", "--no-print-directory", "-C", "..", "image-binary", "IMAGE_OUT="+out, "VERSION=v0.0.0-imagetest")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image-binary: %v\n%s", err, b)
	}
	abs, _ := filepath.Abs("..")
	for _, name := range []string{"neonmeter", "neonsim"} {
		f, err := elf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := f.ImportedLibraries()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (program header %v, libraries %v)", name, p.Type, libs)
			}
		}
		f.Close()
		b, _ := os.ReadFile(filepath.Join(out, name))
		if strings.Contains(string(b), abs+"/") {
			t.Errorf("%s holds the build machine's path %s: -trimpath is missing", name, abs)
		}
	}
	v, err := exec.Command(filepath.Join(out, "neonmeter"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "v0.0.0-imagetest") {
		t.Fatalf("neonmeter version: %v: %s", err, v)
	}
}

// The production image: no shell needed, non-root, CA certificates, a HEALTHCHECK through the
// binary, OCI labels, no simulator and no catalog; the simulator has its own stage.
func TestImage_FinalStage(t *testing.T) {
	stages, order := dockerStages(t)
	final := stages[order[len(order)-1]]
	text := strings.Join(final, "\n")
	if !regexp.MustCompile(`^FROM (scratch|gcr\.io/distroless/static\S*) AS neonmeter$`).MatchString(final[0]) {
		t.Errorf("the last (default) stage is %q: want scratch or distroless static, named neonmeter", final[0])
	}
	if _, ok := stages["neonsim"]; !ok {
		t.Error("no neonsim stage for the compose stack")
	}
	checks := []struct{ re, why string }{
		{`(?m)^USER [1-9]\d*(:[1-9]\d*)?$`, "a numeric non-root USER"},
		{`(?m)^COPY --from=build /etc/ssl/certs/ca-certificates.crt `, "CA certificates"},
		{`(?m)^COPY --from=build \S+ /etc/passwd$`, "a passwd entry"},
		{`(?m)^HEALTHCHECK .*CMD \["/usr/local/bin/neonmeter", "healthcheck"\]$`, "an exec-form HEALTHCHECK running neonmeter healthcheck"},
		{`(?m)^ENTRYPOINT \["/usr/local/bin/neonmeter"\]$`, "an exec-form ENTRYPOINT"},
		{`org\.opencontainers\.image\.version="\$\{VERSION\}"`, "the OCI version label"},
		{`org\.opencontainers\.image\.source=`, "the OCI source label"},
		{`(?m)^EXPOSE 9464$`, "EXPOSE of the listen port"},
		{`NEONMETER_LISTEN_ADDR=0\.0\.0\.0:9464`, "a listen address reachable from outside the container"},
	}
	for _, c := range checks {
		if !regexp.MustCompile(c.re).MatchString(text) {
			t.Errorf("the final stage lacks %s (%s)", c.why, c.re)
		}
	}
	for _, bad := range []string{"RUN ", "neonsim", "plans/", "NEONMETER_PLANS_FILE"} {
		if strings.Contains(text, bad) {
			t.Errorf("the final stage contains %q (no shell, no simulator, no catalog)", bad)
		}
	}
}

// The HEALTHCHECK asks the route serve registers, through a command main.go lists.
func TestImage_HealthcheckRouteServed(t *testing.T) {
	pkg := parseMain(t)
	var commands []string
	ast.Inspect(pkg, func(n ast.Node) bool {
		if c, ok := n.(*ast.CompositeLit); ok { // main.go's {"name", &XCommand{env}}
			if _, ok := elt(c, 1).(*ast.UnaryExpr); ok {
				commands = append(commands, stringLit(elt(c, 0), nil))
			}
		}
		return true
	})
	if !slices.Contains(commands, "healthcheck") {
		t.Errorf("main.go's command list %v has no healthcheck", commands)
	}
	if p, routes := mainConsts(pkg)["healthzPath"], serveRoutes(pkg); p != "/healthz" || !slices.Contains(routes, p) {
		t.Errorf("healthcheck asks %q; serve's routes are %v", p, routes)
	}
}

func elt(c *ast.CompositeLit, i int) ast.Expr {
	if len(c.Elts) != 2 {
		return nil
	}
	return c.Elts[i]
}

// stringLit returns the value of a string literal, or of an identifier naming a constant of
// consts; "" otherwise.
func stringLit(e ast.Expr, consts map[string]string) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		if s, err := strconv.Unquote(e.Value); err == nil {
			return s
		}
	case *ast.Ident:
		return consts[e.Name]
	}
	return ""
}

// .dockerignore keeps local state, tools, binaries and secrets out of the build context and
// keeps what the build reads.
func TestImage_Dockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(readRepo(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			for dir := p; dir != "."; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(pat, dir); ok {
					out = !neg
				}
			}
		}
		return out
	}
	for _, p := range []string{".git/HEAD", ".ch/data", ".tools/bin/stripe-mock", "bin/neonmeter", "deploy/compose/secrets/neon_api_key", "neonmeter"} {
		if !ignored(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/neonmeter/main.go", "schema/migrations/0001_init.sql", "neon/sim/sim.go"} {
		if ignored(p) {
			t.Errorf(".dockerignore keeps %s, which the build needs, out of the context", p)
		}
	}
}

// parseMain parses cmd/neonmeter's non-test files.
func parseMain(t *testing.T) ast.Node {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("..", "cmd", "neonmeter", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file := &ast.File{Name: ast.NewIdent("main")}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		file.Decls = append(file.Decls, f.Decls...)
	}
	return file
}
