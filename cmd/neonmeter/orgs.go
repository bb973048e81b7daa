package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/neon"
)

// orgList is NEONMETER_NEON_ORG_IDS: organizations metered together, each with its consumption
// route ("org-a,org-b:legacy").
type orgList []orgSpec

// orgSpec is one configured organization.
type orgSpec struct {
	ID       string
	Endpoint collector.Endpoint // empty: NEONMETER_NEON_CONSUMPTION_API
}

// Decode parses "id[:v2|:legacy],..." (envconfig.Decoder); duplicates and bad ids are refused
// by Validate, which names the variable.
func (l *orgList) Decode(v string) error {
	*l = nil
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, ep, _ := strings.Cut(item, ":")
		*l = append(*l, orgSpec{ID: id, Endpoint: collector.Endpoint(ep)})
	}
	return nil
}

func (l orgList) String() string {
	parts := make([]string, len(l))
	for i, o := range l {
		parts[i] = o.ID
		if o.Endpoint != "" {
			parts[i] += ":" + string(o.Endpoint)
		}
	}
	return strings.Join(parts, ",")
}

// orgKeyFiles is NEONMETER_NEON_ORG_KEY_FILES: for orgs held by other Neon accounts, the file
// holding that account's API key ("org-c=/run/secrets/neon-b,..."). Resolved keys live beside
// the paths and never print.
type orgKeyFiles struct {
	paths map[string]string // org id → file
	keys  map[string]Secret // file → key, once read
}

// Decode parses "org=file,..." (envconfig.Decoder); a malformed item is an error naming it.
func (k *orgKeyFiles) Decode(v string) error {
	k.paths, k.keys = map[string]string{}, nil
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		org, path, ok := strings.Cut(item, "=")
		if !ok || org == "" || path == "" {
			return fmt.Errorf("want org-id=file, got %q", item)
		}
		if _, dup := k.paths[org]; dup {
			return fmt.Errorf("org %q named twice", org)
		}
		k.paths[org] = path
	}
	return nil
}

func (k orgKeyFiles) String() string {
	items := make([]string, 0, len(k.paths))
	for org, path := range k.paths {
		items = append(items, org+"="+path)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}

// files returns the distinct key files, sorted.
func (k orgKeyFiles) files() []string {
	var files []string
	for _, path := range k.paths {
		if !slices.Contains(files, path) {
			files = append(files, path)
		}
	}
	sort.Strings(files)
	return files
}

// resolve reads every key file once (read decides on permissions, as for the other *_FILE
// secrets).
func (k *orgKeyFiles) resolve(read func(env, path string) (Secret, string, error)) (warnings []string, errs []error) {
	k.keys = map[string]Secret{}
	for _, path := range k.files() {
		key, warning, err := read(envPrefix+"_NEON_ORG_KEY_FILES", path)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k.keys[path] = key
	}
	return warnings, errs
}

// secrets returns every resolved key, for the redactor.
func (k orgKeyFiles) secrets() []string {
	var out []string
	for _, key := range k.keys {
		out = append(out, key.Reveal())
	}
	return out
}

// neonOrg is a configured organization with its consumption route resolved.
type neonOrg struct {
	ID       string
	Endpoint collector.Endpoint
}

// neonAccount is one Neon API key and the organizations it meters: the unit of Neon's rate
// limits, so the unit of the consumption budget.
type neonAccount struct {
	Name string // "default" (NEONMETER_NEON_API_KEY) or the key file
	Key  Secret
	Orgs []neonOrg
}

// orgs returns the configured organizations: NEONMETER_NEON_ORG_IDS, or the single
// NEONMETER_NEON_ORG_ID.
func (c Config) orgs() []neonOrg {
	specs := c.NeonOrgIDs
	if len(specs) == 0 && c.NeonOrgID != "" {
		specs = orgList{{ID: c.NeonOrgID}}
	}
	out := make([]neonOrg, len(specs))
	for i, s := range specs {
		out[i] = neonOrg{ID: s.ID, Endpoint: cmpEndpoint(s.Endpoint, collector.Endpoint(c.NeonConsumption))}
	}
	return out
}

// orgNames lists the configured organizations' ids, for logs.
func (c Config) orgNames() string {
	ids := make([]string, 0, len(c.orgs()))
	for _, o := range c.orgs() {
		ids = append(ids, o.ID)
	}
	return strings.Join(ids, ",")
}

func cmpEndpoint(e, def collector.Endpoint) collector.Endpoint {
	if e == "" {
		return def
	}
	return e
}

// neonAccounts groups the organizations by the key that reads them: the default key first,
// then one account per key file.
func (c Config) neonAccounts() []neonAccount {
	def := neonAccount{Name: "default", Key: c.NeonAPIKey}
	byFile := map[string]*neonAccount{}
	var others []*neonAccount
	for _, o := range c.orgs() {
		path, ok := c.NeonOrgKeys.paths[o.ID]
		if !ok {
			def.Orgs = append(def.Orgs, o)
			continue
		}
		a := byFile[path]
		if a == nil {
			a = &neonAccount{Name: path, Key: c.NeonOrgKeys.keys[path]}
			byFile[path] = a
			others = append(others, a)
		}
		a.Orgs = append(a.Orgs, o)
	}
	out := []neonAccount{}
	if len(def.Orgs) > 0 || len(others) == 0 {
		out = append(out, def)
	}
	for _, a := range others {
		out = append(out, *a)
	}
	return out
}

// validateOrgs checks the organization settings; bad names the variable.
func (c Config) validateOrgs(bad func(env, format string, a ...any)) {
	if len(c.NeonOrgIDs) > 0 && c.NeonOrgID != "" {
		bad("NEON_ORG_IDS", "set either it or NEONMETER_NEON_ORG_ID, not both")
	}
	if c.NeonOrgID != "" && !neon.ValidID(c.NeonOrgID) {
		bad("NEON_ORG_ID", "must be a Neon id (lowercase letters, digits and dashes, at most 60), got %q", c.NeonOrgID)
	}
	seen := map[string]bool{}
	for _, o := range c.NeonOrgIDs {
		switch {
		case !neon.ValidID(o.ID):
			bad("NEON_ORG_IDS", "%q is not a Neon id (lowercase letters, digits and dashes, at most 60)", o.ID)
		case o.Endpoint != "" && !o.Endpoint.Valid():
			bad("NEON_ORG_IDS", "%s: the consumption route must be %s or %s, got %q", o.ID, collector.EndpointV2, collector.EndpointLegacy, o.Endpoint)
		case seen[o.ID]:
			bad("NEON_ORG_IDS", "%s is listed twice", o.ID)
		}
		seen[o.ID] = true
	}
	configured := map[string]bool{}
	for _, o := range c.orgs() {
		configured[o.ID] = true
	}
	for org := range c.NeonOrgKeys.paths {
		if !configured[org] {
			bad("NEON_ORG_KEY_FILES", "names %s, which is not in NEONMETER_NEON_ORG_IDS", org)
		}
	}
}

// requireNeonKeys names each account without a key: the default one when some org uses it.
func (c Config) requireNeonKeys() error {
	for _, a := range c.neonAccounts() {
		if a.Key == "" && a.Name == "default" {
			return fmt.Errorf("%s_NEON_API_KEY (or %s_NEON_API_KEY_FILE) is required", envPrefix, envPrefix)
		}
		if a.Key == "" {
			return fmt.Errorf("%s_NEON_ORG_KEY_FILES: %s was not read", envPrefix, a.Name)
		}
	}
	return nil
}
