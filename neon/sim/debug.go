package sim

import (
	"encoding/json"
	"net/http"
	"time"
)

// Debug routes are not part of Neon's API: no authentication, rate limiting, faults or stats.

// TruthValue is one hour of /debug/truth.
type TruthValue struct {
	Hour  time.Time `json:"hour"`
	Value int64     `json:"value"`
}

// debugTruth serves GET /debug/truth?project_id=&metric=&from=&to=: the hourly ground truth
// (what Value returns) for hours [from, to), zeros included; from and to default to the last
// 168 hours and are truncated to the hour; at most 9000 hours.
func (s *Sim) debugTruth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, name := q.Get("project_id"), q.Get("metric")
	if _, ok := s.byID[id]; !ok {
		s.writeError(w, r, http.StatusNotFound, "NOT_FOUND", "project not found: "+id)
		return
	}
	if _, ok := metricByName(name); !ok {
		s.writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "unknown metric: "+name)
		return
	}
	now := s.now().UTC()
	to, from := now.Truncate(time.Hour), now.Truncate(time.Hour).Add(-168*time.Hour)
	for _, x := range []struct {
		key string
		dst *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(x.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", x.key+": not an RFC 3339 date-time")
				return
			}
			*x.dst = t.UTC().Truncate(time.Hour)
		}
	}
	if to.Sub(from) > 9000*time.Hour {
		s.writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "at most 9000 hours")
		return
	}
	out := struct {
		ProjectID string       `json:"project_id"`
		Metric    string       `json:"metric"`
		Values    []TruthValue `json:"values"`
	}{ProjectID: id, Metric: name, Values: []TruthValue{}}
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		out.Values = append(out.Values, TruthValue{Hour: h, Value: s.Value(id, name, h)})
	}
	writeDebug(w, out)
}

func (s *Sim) debugProject(w http.ResponseWriter, r *http.Request) {
	st, ok := s.Project(r.PathValue("project_id"))
	if !ok {
		s.writeError(w, r, http.StatusNotFound, "NOT_FOUND", "project not found: "+r.PathValue("project_id"))
		return
	}
	writeDebug(w, st)
}

func (s *Sim) debugStats(w http.ResponseWriter, _ *http.Request) { writeDebug(w, s.Stats()) }

// debugConnect serves POST /debug/connect/{project_id}: a client connection (TryWake), which
// starts the project's computes unless its quota holds them or they are disabled.
func (s *Sim) debugConnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("project_id")
	if _, ok := s.byID[id]; !ok {
		s.writeError(w, r, http.StatusNotFound, "NOT_FOUND", "project not found: "+id)
		return
	}
	writeDebug(w, struct {
		ProjectID string `json:"project_id"`
		Running   bool   `json:"running"`
	}{id, s.TryWake(id)})
}

func writeDebug(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
