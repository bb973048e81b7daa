package chstore_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/collector/chstore"
)

// Every query the store builds is in Statements: a statement missing there would escape the
// golden catalog and the runs on both engines (schema/registry_test.go).
func TestStatements_Complete(t *testing.T) {
	listed := map[string]bool{}
	for _, q := range chstore.Statements() {
		if listed[q.Name] {
			t.Errorf("statement %s is listed twice", q.Name)
		}
		listed[q.Name] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`Query\{Name: "([a-z_.]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range names.FindAllStringSubmatch(string(src), -1) {
			found++
			if !listed[m[1]] {
				t.Errorf("%s builds query %s, which Statements does not list", f, m[1])
			}
		}
	}
	if found != len(listed) {
		t.Fatalf("found %d query builders for %d statements; did their shape change?", found, len(listed))
	}
}
