package stripefake

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// parseForm returns the request's parameters: the query string, plus the form-encoded body of
// POST and DELETE requests (stripe-go sends GET and DELETE parameters in the query).
func parseForm(r *http.Request, body []byte) url.Values {
	v := url.Values{}
	for k, vs := range r.URL.Query() {
		v[k] = append(v[k], vs...)
	}
	if len(body) > 0 {
		if b, err := url.ParseQuery(string(body)); err == nil {
			for k, vs := range b {
				v[k] = append(v[k], vs...)
			}
		}
	}
	return v
}

// formMap returns the entries name[key]=value as a map, like metadata[neon_project_id].
func formMap(v url.Values, name string) map[string]string {
	out := map[string]string{}
	prefix := name + "["
	for k, vs := range v {
		if rest, ok := strings.CutPrefix(k, prefix); ok && strings.HasSuffix(rest, "]") && !strings.Contains(rest, "[") {
			out[strings.TrimSuffix(rest, "]")] = vs[len(vs)-1]
		}
	}
	return out
}

// formSet is the set of an array parameter's values (a filter; empty: no filter).
func formSet(v url.Values, name string) map[string]bool {
	set := map[string]bool{}
	for _, s := range formStrings(v, name) {
		set[s] = true
	}
	return set
}

// formStrings returns name[]=a&name[]=b or name[0]=a&name[1]=b as a list, in index order.
func formStrings(v url.Values, name string) []string {
	type entry struct {
		i int
		s string
	}
	var es []entry
	for k, vs := range v {
		rest, ok := strings.CutPrefix(k, name+"[")
		if !ok || !strings.HasSuffix(rest, "]") {
			continue
		}
		idx := strings.TrimSuffix(rest, "]")
		if idx == "" {
			for _, s := range vs {
				es = append(es, entry{len(es) + 1<<20, s})
			}
			continue
		}
		if i, err := strconv.Atoi(idx); err == nil {
			es = append(es, entry{i, vs[len(vs)-1]})
		}
	}
	sort.SliceStable(es, func(a, b int) bool { return es[a].i < es[b].i })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

// formList returns name[N][field]=value entries grouped by N, in index order; nested fields
// keep their brackets ("price_data[currency]").
func formList(v url.Values, name string) []map[string]string {
	groups := map[int]map[string]string{}
	for k, vs := range v {
		rest, ok := strings.CutPrefix(k, name+"[")
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, "][")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		field = strings.TrimSuffix(field, "]")
		if groups[i] == nil {
			groups[i] = map[string]string{}
		}
		groups[i][field] = vs[len(vs)-1]
	}
	idx := make([]int, 0, len(groups))
	for i := range groups {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]map[string]string, len(idx))
	for n, i := range idx {
		out[n] = groups[i]
	}
	return out
}

// formInt parses an integer parameter; absent is ok=false without error.
func formInt(v url.Values, name string) (n int64, ok bool, err *apiError) {
	s := v.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return 0, false, invalid(name, "Invalid integer: %s", s)
	}
	return n, true, nil
}

// formBool parses a boolean parameter; absent is ok=false.
func formBool(v url.Values, name string) (b, ok bool, err *apiError) {
	switch v.Get(name) {
	case "":
		return false, false, nil
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, invalid(name, "Invalid boolean: %s", v.Get(name))
}

// applyMetadata updates md with metadata[k]=v entries; an empty value deletes the key, as in
// Stripe.
func applyMetadata(md map[string]string, v url.Values) *apiError {
	for k, val := range formMap(v, "metadata") {
		if len(k) > 40 {
			return invalid("metadata", "Metadata keys can have up to 40 characters; %q has %d.", k, len(k))
		}
		if len(val) > 500 {
			return invalid("metadata", "Metadata values can have up to 500 characters, but you passed in a value that is %d characters.", len(val))
		}
		if val == "" {
			delete(md, k)
			continue
		}
		md[k] = val
	}
	if len(md) > 50 {
		return invalid("metadata", "You can have up to 50 metadata keys.")
	}
	return nil
}
