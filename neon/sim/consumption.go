package sim

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type granularity uint8

const (
	gHourly granularity = iota
	gDaily
	gMonthly
)

// earliestFrom is the first instant either consumption route serves (2024-03-01T00:00:00Z).
const earliestFrom = 1709251200

func parseGranularity(s string) (granularity, bool) {
	switch s {
	case "hourly":
		return gHourly, true
	case "daily":
		return gDaily, true
	case "monthly":
		return gMonthly, true
	}
	return 0, false
}

// floor rounds t down to the granularity, as Neon rounds from and to.
func (g granularity) floor(t int64) int64 {
	switch g {
	case gHourly:
		return floorDiv(t, 3600) * 3600
	case gDaily:
		return floorDiv(t, 86400) * 86400
	}
	return monthStart(t)
}

func (g granularity) next(t int64) int64 {
	switch g {
	case gHourly:
		return t + 3600
	case gDaily:
		return t + 86400
	}
	return addMonths(t, 1)
}

// earliest is the first bucket start the granularity's lookback allows: 168 hours, 60 days or
// one year back from now.
func (g granularity) earliest(now int64) int64 {
	switch g {
	case gHourly:
		return g.floor(now) - 168*3600
	case gDaily:
		return g.floor(now) - 60*86400
	}
	return addMonths(g.floor(now), -12)
}

// listParam collects a list parameter given repeated, comma-separated, or both.
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// consQuery is a validated consumption request.
type consQuery struct {
	legacy   bool
	org      int
	g        granularity
	from, to int64 // aligned to g, [from, to)
	metrics  []metric
	limit    int
	filtered bool    // project_ids was given
	ids      []int32 // org positions of the requested projects of this org, ascending
	cursor   int32   // org position of the cursor project, -1 = none
}

// handleConsumption serves both consumption routes. Checks run in this order: parameters
// (400), organization (404), plan (403), range (406).
func (s *Sim) handleConsumption(rc *reqCtx, legacy bool) {
	cq, ok := s.parseConsumption(rc, legacy)
	if !ok {
		return
	}
	page, more := s.consumptionPage(rc, &cq)

	views := make([]view, len(page))
	s.mu.Lock()
	for i, idx := range page {
		views[i] = s.viewLocked(&s.projects[idx], floorDiv(cq.from, 3600), ceilDiv(cq.to, 3600))
	}
	revs := s.revisions
	s.mu.Unlock()

	rc.status = http.StatusOK
	*rc.buf = s.appendConsumption((*rc.buf)[:0], &cq, page, more, views, revs, rc.sec())
}

func (s *Sim) parseConsumption(rc *reqCtx, legacy bool) (consQuery, bool) {
	q := rc.r.URL.Query()
	cq := consQuery{legacy: legacy, limit: 10, cursor: -1}
	from, to, ok := parseConsumptionParams(rc, q, &cq)
	if !ok {
		return cq, false
	}
	ids := listParam(q, "project_ids")
	if len(ids) > 100 {
		rc.badRequest("project_ids: at most 100 ids")
		return cq, false
	}
	if !s.consumptionOrg(rc, q.Get("org_id"), &cq) || !consumptionRange(rc, q.Get("granularity"), from, to, &cq) {
		return cq, false
	}
	return cq, s.consumptionSelection(rc, ids, q.Get("cursor"), &cq)
}

// parseConsumptionParams checks from, to, granularity, limit and metrics (400 when bad).
func parseConsumptionParams(rc *reqCtx, q url.Values, cq *consQuery) (from, to time.Time, ok bool) {
	for _, name := range [...]string{"from", "to", "granularity"} {
		if q.Get(name) == "" {
			rc.badRequest("missing required parameter: " + name)
			return from, to, false
		}
	}
	from, err := time.Parse(time.RFC3339, q.Get("from"))
	if err != nil {
		rc.badRequest("from: not an RFC 3339 date-time: " + q.Get("from"))
		return from, to, false
	}
	to, err = time.Parse(time.RFC3339, q.Get("to"))
	if err != nil {
		rc.badRequest("to: not an RFC 3339 date-time: " + q.Get("to"))
		return from, to, false
	}
	if cq.g, ok = parseGranularity(q.Get("granularity")); !ok {
		rc.badRequest("granularity: must be hourly, daily or monthly")
		return from, to, false
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			rc.badRequest("limit: must be an integer from 1 to 100")
			return from, to, false
		}
		cq.limit = n
	}
	names := listParam(q, "metrics")
	if len(names) == 0 {
		if !cq.legacy {
			rc.badRequest("missing required parameter: metrics")
			return from, to, false
		}
		names = []string{"active_time_seconds", "compute_time_seconds", "written_data_bytes", "synthetic_storage_size_bytes"}
	}
	for _, n := range names {
		m, ok := metricByName(n)
		if !ok || isLegacyMetric(m) != cq.legacy {
			rc.badRequest(fmt.Sprintf("metrics: unsupported metric %q", n))
			return from, to, false
		}
		if !slices.Contains(cq.metrics, m) {
			cq.metrics = append(cq.metrics, m)
		}
	}
	slices.Sort(cq.metrics)
	return from, to, true
}

// consumptionOrg resolves org_id (404 when unknown) and checks the route's plans (403).
func (s *Sim) consumptionOrg(rc *reqCtx, orgID string, cq *consQuery) bool {
	switch {
	case orgID == "" && !cq.legacy:
		rc.badRequest("missing required parameter: org_id")
		return false
	case orgID == "":
		cq.org = orgLegacy // the legacy route defaults to the caller's own (legacy-plan) account
	default:
		cq.org = -1
		for i := range s.orgs {
			if s.orgs[i].id == orgID {
				cq.org = i
			}
		}
		if cq.org < 0 {
			rc.notFound("account is not a member of organization " + orgID)
			return false
		}
	}
	if !cq.legacy && (cq.org == orgFree || cq.org == orgLegacy) {
		rc.fail(http.StatusForbidden, "FORBIDDEN", "Not available for this account. Project consumption history requires a Launch, Scale, Agent, Business, or Enterprise plan.")
		return false
	}
	if cq.legacy && cq.org != orgLegacy {
		rc.fail(http.StatusForbidden, "FORBIDDEN", "This endpoint is not available. It is only supported with Scale, Business, and Enterprise plan accounts.")
		return false
	}
	return true
}

// consumptionRange rounds from and to to the granularity and checks its window (406).
func consumptionRange(rc *reqCtx, gran string, from, to time.Time, cq *consQuery) bool {
	g := cq.g
	cq.from, cq.to = g.floor(from.Unix()), g.floor(to.Unix())
	switch now := rc.sec(); {
	case cq.from < earliestFrom:
		rc.fail(http.StatusNotAcceptable, "NOT_ACCEPTABLE", "from: the earliest allowed value is 2024-03-01T00:00:00Z")
		return false
	case cq.from < g.earliest(now):
		rc.fail(http.StatusNotAcceptable, "NOT_ACCEPTABLE", fmt.Sprintf("from: %s is outside the %s window (earliest %s)",
			time.Unix(cq.from, 0).UTC().Format(time.RFC3339), gran, time.Unix(g.earliest(now), 0).UTC().Format(time.RFC3339)))
		return false
	case cq.to <= cq.from:
		rc.fail(http.StatusNotAcceptable, "NOT_ACCEPTABLE", "to must be after from once both are rounded to the granularity")
		return false
	}
	return true
}

// consumptionSelection resolves project_ids and the cursor within the org.
func (s *Sim) consumptionSelection(rc *reqCtx, ids []string, cursor string, cq *consQuery) bool {
	// Ids of other orgs or of no project select nothing, as a filter that matches nothing.
	if len(ids) > 0 {
		cq.filtered = true
		for _, id := range ids {
			if idx, ok := s.byID[id]; ok && int(s.projects[idx].org) == cq.org {
				cq.ids = append(cq.ids, s.projects[idx].orgPos)
			}
		}
		slices.Sort(cq.ids)
		cq.ids = slices.Compact(cq.ids)
	}
	if cursor != "" {
		idx, ok := s.byID[cursor]
		if !ok || int(s.projects[idx].org) != cq.org {
			rc.badRequest("cursor: not a cursor of this listing: " + cursor)
			return false
		}
		cq.cursor = s.projects[idx].orgPos
	}
	return true
}

// consumptionPage selects the page's projects, newest-created first, after the cursor; with
// the repeat-page fault it selects the page that ended at the cursor instead. more reports
// whether projects follow the page. With project_ids it walks only the requested projects'
// positions, so a filtered call costs the same in a fleet of any size.
func (s *Sim) consumptionPage(rc *reqCtx, cq *consQuery) (page []int32, more bool) {
	order := s.orgs[cq.org].projects
	n, pos := len(order), func(k int) int32 { return int32(k) }
	if cq.filtered {
		n, pos = len(cq.ids), func(k int) int32 { return cq.ids[k] }
	}
	next := sort.Search(n, func(k int) bool { return pos(k) > cq.cursor })
	page = make([]int32, 0, cq.limit)
	if rc.fault == faultRepeatPage && cq.cursor >= 0 {
		for k := max(0, next-cq.limit); k < next; k++ {
			page = append(page, order[pos(k)])
		}
		rc.applied = len(page) > 0
		return page, true
	}
	end := min(n, next+cq.limit)
	for k := next; k < end; k++ {
		page = append(page, order[pos(k)])
	}
	return page, end < n
}

// appendConsumption writes a page. A full page followed by more projects carries pagination;
// the last page has none, so a listing of N projects costs exactly ⌈N/limit⌉ requests.
func (s *Sim) appendConsumption(b []byte, cq *consQuery, page []int32, more bool, views []view, revs []revision, now int64) []byte {
	b = append(b, `{"projects":[`...)
	for i, idx := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendProjectConsumption(b, cq, &s.projects[idx], &views[i], revs, now)
	}
	b = append(b, ']')
	if more && len(page) == cq.limit {
		b = append(b, `,"pagination":{"cursor":`...)
		b = appendString(b, s.projects[page[len(page)-1]].id)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (s *Sim) appendProjectConsumption(b []byte, cq *consQuery, p *project, v *view, revs []revision, now int64) []byte {
	b = append(b, `{"project_id":`...)
	b = appendString(b, p.id)
	b = append(b, `,"periods":[`...)
	var (
		cur         period
		open        bool
		vals, sums  [numMetrics]int64
		lastH       = floorDiv(now, 3600) // hours before lastH are complete
		firstPeriod = true
		firstFrame  bool
	)
	for bs, be := cq.from, cq.g.next(cq.from); bs < cq.to; bs, be = be, cq.g.next(be) {
		h0, h1 := max(floorDiv(bs, 3600), s.histHour), min(floorDiv(be, 3600), lastH)
		if floorDiv(bs, 3600) >= lastH {
			break
		}
		if h0 >= h1 {
			continue
		}
		for _, m := range cq.metrics {
			sums[m] = 0
		}
		for h := h0; h < h1; h++ {
			s.reportedHour(p, v, revs, h, now, &vals)
			for _, m := range cq.metrics {
				sums[m] += vals[m]
			}
		}
		empty := true
		for _, m := range cq.metrics {
			if sums[m] != 0 {
				empty = false
			}
		}
		if empty {
			continue
		}
		if !open || bs < cur.start || bs >= cur.end {
			if open {
				b = append(b, "]}"...)
			}
			if !firstPeriod {
				b = append(b, ',')
			}
			firstPeriod, open, firstFrame = false, true, true
			cur = s.periodAt(p, bs)
			b = s.appendPeriodHeader(b, p, cur, now)
		}
		if !firstFrame {
			b = append(b, ',')
		}
		firstFrame = false
		b = appendTimeframe(b, cq, bs, be, &sums)
	}
	if open {
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendTimeframe writes one bucket: the legacy route's flat fields, or v2's metrics list of
// the non-zero sums.
func appendTimeframe(b []byte, cq *consQuery, bs, be int64, sums *[numMetrics]int64) []byte {
	b = append(b, `{"timeframe_start":"`...)
	b = appendTime(b, bs)
	b = append(b, `","timeframe_end":"`...)
	b = appendTime(b, be)
	b = append(b, '"')
	if cq.legacy {
		b = appendLegacyFields(b, cq.metrics, sums)
		return append(b, '}')
	}
	b = append(b, `,"metrics":[`...)
	first := true
	for _, m := range cq.metrics {
		if sums[m] == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"metric_name":"`...)
		b = append(b, m.String()...)
		b = append(b, `","value":`...)
		b = appendInt(b, sums[m])
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func (s *Sim) appendPeriodHeader(b []byte, p *project, pr period, now int64) []byte {
	b = append(b, `{"period_id":"`...)
	hi, lo := s.periodID(p, pr.start)
	b = appendUUID(b, hi, lo)
	b = append(b, `","period_plan":"`...)
	b = append(b, planName(pr.plan)...)
	b = append(b, `","period_start":"`...)
	b = appendTime(b, pr.start)
	b = append(b, '"')
	if pr.end <= now {
		b = append(b, `,"period_end":"`...)
		b = appendTime(b, pr.end)
		b = append(b, '"')
	}
	return append(b, `,"consumption":[`...)
}

// appendLegacyFields writes the legacy route's flat fields: the four the spec requires always
// (0 when not requested), the others only when requested and non-zero.
func appendLegacyFields(b []byte, metrics []metric, sums *[numMetrics]int64) []byte {
	for m := firstLegacy; m < numMetrics; m++ {
		requested := slices.Contains(metrics, m)
		required := m <= mSyntheticStorageSizeBytes
		if !required && (!requested || sums[m] == 0) {
			continue
		}
		var v int64
		if requested {
			v = sums[m]
		}
		b = append(b, `,"`...)
		b = append(b, m.String()...)
		b = append(b, `":`...)
		b = appendInt(b, v)
	}
	return b
}
