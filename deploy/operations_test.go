package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// headingAnchors returns the GitHub anchors of a Markdown file's headings, by anchor → heading.
func headingAnchors(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = h
	}
	return out
}

// Every alert has a runbook: its runbook annotation points at a heading named after it, in
// docs/operations.md or a doc it links, and docs/operations.md lists it with that link.
func TestOperations_EveryAlertHasARunbook(t *testing.T) {
	var rules ruleGroups
	b, err := os.ReadFile(filepath.Join("prometheus", "neonmeter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	decodeStrict(t, b, &rules)
	opsFile := filepath.Join("..", "docs", "operations.md")
	ops, err := os.ReadFile(opsFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			file, anchor, ok := strings.Cut(r.Annotations["runbook"], "#")
			if !ok || !strings.HasPrefix(file, "docs/") {
				t.Errorf("%s: runbook annotation %q is not docs/<file>.md#<anchor>", r.Alert, r.Annotations["runbook"])
				continue
			}
			if h, found := headingAnchors(t, filepath.Join("..", file))[anchor]; !found || h != r.Alert {
				t.Errorf("%s: %s has no heading %q (anchor #%s)", r.Alert, file, r.Alert, anchor)
			}
			link := filepath.Base(file) + "#" + anchor
			if filepath.Base(file) == "operations.md" {
				link = "#" + anchor
			}
			if !strings.Contains(string(ops), "| "+r.Alert+" | [") || !strings.Contains(string(ops), "("+link+")") {
				t.Errorf("%s: docs/operations.md does not list it with a link to its runbook (%s)", r.Alert, link)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alert read from the rules file")
	}
}
