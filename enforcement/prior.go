package enforcement

import (
	"slices"
	"strconv"
	"strings"

	"github.com/neonmeter/neonmeter/neon"
)

// prior is what a project had before enforcement changed it, so that a restore and a release
// give it back rather than the plan's values or nothing (stored as Memory.Prior text).
type prior struct {
	// Settings is set when Quota and Defaults are known: recorded at the first read of a project
	// enforcement never managed, and again at the first read after a release.
	Settings bool
	Quota    neon.Quota
	Defaults neon.DefaultEndpointSettings
	// Endpoints are the computes enforcement throttled or capped and has not given back yet,
	// with the range each had before, sorted by id.
	Endpoints []endpointPrior
}

// endpointPrior is one compute's autoscaling range before enforcement changed it.
type endpointPrior struct {
	ID           string
	MinCU, MaxCU float64
}

// String is the stored form: "q=active,compute,written,transfer,logical d=min,max,suspend
// e=id:min:max,…", each part present only when known.
func (pr prior) String() string {
	var parts []string
	if pr.Settings {
		q, d := pr.Quota, pr.Defaults
		parts = append(parts, "q="+ints(q.ActiveTimeSeconds, q.ComputeTimeSeconds, q.WrittenDataBytes, q.DataTransferBytes, q.LogicalSizeBytes),
			"d="+fl(d.AutoscalingLimitMinCU)+","+fl(d.AutoscalingLimitMaxCU)+","+strconv.FormatInt(d.SuspendTimeoutSeconds, 10))
	}
	if len(pr.Endpoints) > 0 {
		eps := make([]string, len(pr.Endpoints))
		for i, e := range pr.Endpoints {
			eps[i] = e.ID + ":" + fl(e.MinCU) + ":" + fl(e.MaxCU)
		}
		parts = append(parts, "e="+strings.Join(eps, ","))
	}
	return strings.Join(parts, " ")
}

func fl(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func ints(vs ...int64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ",")
}

// parsePrior reads the stored form; a part that does not parse is left unknown (the project then
// falls back to what enforcement did before priors were recorded).
func parsePrior(s string) prior {
	var pr prior
	if s == "" {
		return pr
	}
	var qOK, dOK bool
	for _, part := range strings.Fields(s) {
		key, val, _ := strings.Cut(part, "=")
		f := strings.Split(val, ",")
		switch key {
		case "q":
			n, ok := parseInts(f, 5)
			if qOK = ok; ok {
				pr.Quota = neon.Quota{ActiveTimeSeconds: n[0], ComputeTimeSeconds: n[1], WrittenDataBytes: n[2], DataTransferBytes: n[3], LogicalSizeBytes: n[4]}
			}
		case "d":
			if len(f) == 3 {
				mn, e1 := strconv.ParseFloat(f[0], 64)
				mx, e2 := strconv.ParseFloat(f[1], 64)
				st, e3 := strconv.ParseInt(f[2], 10, 64)
				if dOK = e1 == nil && e2 == nil && e3 == nil; dOK {
					pr.Defaults = neon.DefaultEndpointSettings{AutoscalingLimitMinCU: mn, AutoscalingLimitMaxCU: mx, SuspendTimeoutSeconds: st}
				}
			}
		case "e":
			pr.Endpoints = parseEndpoints(f)
		}
	}
	pr.Settings = qOK && dOK
	return pr
}

func parseInts(f []string, n int) ([]int64, bool) {
	if len(f) != n {
		return nil, false
	}
	out := make([]int64, n)
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func parseEndpoints(f []string) []endpointPrior {
	var out []endpointPrior
	for _, e := range f {
		p := strings.Split(e, ":")
		if len(p) != 3 {
			continue
		}
		mn, e1 := strconv.ParseFloat(p[1], 64)
		mx, e2 := strconv.ParseFloat(p[2], 64)
		if e1 == nil && e2 == nil && neon.ValidID(p[0]) {
			out = append(out, endpointPrior{ID: p[0], MinCU: mn, MaxCU: mx})
		}
	}
	return out
}

// endpoint returns the compute's prior range, if enforcement changed it.
func (pr prior) endpoint(id string) (endpointPrior, bool) {
	for _, e := range pr.Endpoints {
		if e.ID == id {
			return e, true
		}
	}
	return endpointPrior{}, false
}

// noteAction updates the endpoint ranges after a successful action: a compute enforcement
// throttles or caps for the first time keeps its range from before; one given back its range
// no longer needs it.
func (pr prior) noteAction(a Action) prior {
	if a.Kind != ActionUpdateEndpoint {
		return pr
	}
	e, known := pr.endpoint(a.EndpointID)
	switch {
	case !known && (a.Reason == ReasonThrottle || a.Reason == ReasonCap):
		pr.Endpoints = append(slices.Clone(pr.Endpoints), endpointPrior{ID: a.EndpointID, MinCU: a.PrevMinCU, MaxCU: a.PrevMaxCU})
		slices.SortFunc(pr.Endpoints, func(a, b endpointPrior) int { return strings.Compare(a.ID, b.ID) })
	case known && a.Reason == ReasonRestore && e.MinCU == a.MinCU && e.MaxCU == a.MaxCU:
		pr.Endpoints = slices.DeleteFunc(slices.Clone(pr.Endpoints), func(x endpointPrior) bool { return x.ID == a.EndpointID })
	}
	return pr
}

// notePrior is what a read of Neon (o) teaches the verdict's prior: the settings of a project
// enforcement did not manage yet (its first read, or the first after a release), and endpoint
// ranges dropped for computes that are gone or already back to them (when the computes were
// read). A project released at its first read gets its target from the settings just recorded.
func notePrior(d Desired, v Verdict, o Observed, pol Policy) Verdict {
	pr := parsePrior(v.Next.Prior)
	last := statusOf(d.Last.Applied)
	first := d.Last.Applied == "" && !pr.Settings
	if first || (last == StatusReleased && v.Target.Status != StatusReleased) {
		pr.Settings, pr.Quota, pr.Defaults = true, o.Quota, o.Defaults
	}
	if !o.SettingsOnly {
		pr.Endpoints = slices.DeleteFunc(slices.Clone(pr.Endpoints), func(e endpointPrior) bool {
			i := slices.IndexFunc(o.Endpoints, func(ep neon.Endpoint) bool { return ep.ID == e.ID })
			return i < 0 || (o.Endpoints[i].AutoscalingLimitMinCU == e.MinCU && o.Endpoints[i].AutoscalingLimitMaxCU == e.MaxCU)
		})
	}
	v.Next.Prior = pr.String()
	if first && v.Target.Status == StatusReleased {
		d.Last.Prior = v.Next.Prior
		v.Target = target(d, v.Target.Status, pol.NeverSuspend[d.ProjectID])
	}
	return v
}
