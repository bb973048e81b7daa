// Package spectest validates HTTP traffic against Neon's published OpenAPI spec, which the
// project reads from ../shared/neon-api/openapi.yaml beside the repository (never a copy in it).
package spectest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvSpecPath overrides where the spec is read from.
const EnvSpecPath = "NEONMETER_OPENAPI_SPEC"

// BasePath is the path prefix of the spec's server URL, under which the simulator serves.
const BasePath = "/api/v2"

// Spec is a loaded spec with a router that finds each request's operation.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router
}

// Path returns where the spec file is expected: $NEONMETER_OPENAPI_SPEC, else
// ../shared/neon-api/openapi.yaml relative to the repository root (the folder holding go.mod).
func Path() (string, error) {
	if p := os.Getenv(EnvSpecPath); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "neon-api", "openapi.yaml"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("spectest: no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Load reads and parses the spec once per test binary. A missing spec fails the test: the
// conformance tests must never pass by not running.
func Load(t testing.TB) *Spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = load() })
	if loadErr != nil {
		t.Fatalf("spectest: %v", loadErr)
	}
	return loaded
}

func load() (*Spec, error) {
	p, err := Path()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("the Neon OpenAPI spec is required for conformance tests: %w", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(p)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", p, err)
	}
	if err := relaxPatterns(doc); err != nil {
		return nil, err
	}
	// Match requests by path under the spec's base path, whatever host serves them.
	doc.Servers = openapi3.Servers{{URL: BasePath}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Spec{Doc: doc, router: r}, nil
}

// relaxPatterns rewrites the parameter patterns Go's regexp cannot compile. The spec's
// project_ids pattern nests {1,60} inside {0,99}, beyond RE2's repetition limit of 1000; its
// outer bound becomes * (the 100-item bound is still checked by maxItems), so the rest of the
// pattern is still enforced instead of every such request being flagged.
func relaxPatterns(doc *openapi3.T) error {
	fix := func(sch *openapi3.Schema) error {
		if sch == nil || sch.Pattern == "" {
			return nil
		}
		if _, err := regexp.Compile(sch.Pattern); err == nil {
			return nil
		}
		relaxed := repeatBound.ReplaceAllString(sch.Pattern, "*")
		if _, err := regexp.Compile(relaxed); err != nil {
			return fmt.Errorf("spec pattern %q cannot be compiled, even relaxed: %w", sch.Pattern, err)
		}
		sch.Pattern = relaxed
		return nil
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range append(openapi3.Parameters{}, append(item.Parameters, op.Parameters...)...) {
				if p.Value == nil || p.Value.Schema == nil || p.Value.Schema.Value == nil {
					continue
				}
				sch := p.Value.Schema.Value
				if err := fix(sch); err != nil {
					return err
				}
				if sch.Items != nil {
					if err := fix(sch.Items.Value); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// repeatBound matches a bounded repetition with a large upper bound, like {0,99}.
var repeatBound = regexp.MustCompile(`\{0,[0-9]{2,}\}`)

var filterOpts = &openapi3filter.Options{
	AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
	// Error bodies are checked as GeneralError by the "default" response like any other.
	IncludeResponseStatus: true,
	MultiError:            true,
}

// ValidateRequest checks a request (method, path, query, headers, body) against the spec.
// body is the request body, since req.Body may already be consumed.
func (s *Spec) ValidateRequest(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such operation in the spec: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: filterOpts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return in, fmt.Errorf("%s %s (%s): request: %w", req.Method, req.URL.Path, route.Operation.OperationID, err)
	}
	return in, nil
}

// ValidateResponse checks a response to a request already validated by ValidateRequest.
func (s *Spec) ValidateResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                filterOpts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s %s (%s): response %d: %w", in.Request.Method, in.Request.URL.Path, in.Route.Operation.OperationID, status, err)
	}
	return nil
}

// Recorder is middleware that validates every request and response passing through it and
// keeps the failures and the operations seen.
type Recorder struct {
	spec *Spec
	next http.Handler

	mu         sync.Mutex
	errs       []error
	operations map[string]int
	// SkipResponse, when set, excludes responses from validation, e.g. bodies the simulator
	// deliberately corrupted as injected faults.
	SkipResponse func(r *http.Request, status int, body []byte) bool
}

// NewRecorder wraps next.
func (s *Spec) NewRecorder(next http.Handler) *Recorder {
	return &Recorder{spec: s, next: next, operations: map[string]int{}}
}

func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	in, err := rec.spec.ValidateRequest(r, body)
	rw := httptest.NewRecorder()
	rec.next.ServeHTTP(rw, r)
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.errs = append(rec.errs, err)
		return
	}
	rec.operations[in.Route.Operation.OperationID]++
	if rec.SkipResponse != nil && rec.SkipResponse(r, rw.Code, rw.Body.Bytes()) {
		return
	}
	if err := rec.spec.ValidateResponse(in, rw.Code, rw.Header(), rw.Body.Bytes()); err != nil {
		rec.errs = append(rec.errs, err)
	}
}

// Errors returns every validation failure so far.
func (rec *Recorder) Errors() []error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]error(nil), rec.errs...)
}

// Operations returns how many valid requests each operationId received.
func (rec *Recorder) Operations() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[string]int, len(rec.operations))
	for k, v := range rec.operations {
		out[k] = v
	}
	return out
}

// Check fails the test with every recorded validation failure (at most 20 shown).
func (rec *Recorder) Check(t testing.TB) {
	t.Helper()
	errs := rec.Errors()
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... and %d more spec violations", len(errs)-20)
			break
		}
		t.Errorf("spec violation: %v", err)
	}
}
