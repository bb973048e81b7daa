package neon

// The consumption decoder is hand-written for its strictness. encoding/json accepts pages that
// it refuses, and no check after json.Unmarshal can tell them apart:
//   - a key repeated in one object ("value":1,"value":9): encoding/json silently keeps the last;
//   - a key in another case ("Value", "METRIC_NAME"): encoding/json matches it case-insensitively;
//   - invalid UTF-8 in a string (period id, plan, cursor): replaced by U+FFFD, so the page reads
//     as something it did not say.
//
// Into plain fields, encoding/json also reads "value":null and a missing field as a real 0.
// Speed is not the reason: at Neon's 50 consumption requests a minute, encoding/json would spend
// about 5 % of one core on 72-hour pages (12 % at the 168-hour maximum), this decoder about 1 %
// (2 %); see docs/benchmarks.md.

import (
	"fmt"
	"time"
)

// decodeOpts are what a page is checked against: the request that produced it.
type decodeOpts struct {
	legacy      bool
	granularity Granularity
	from, to    time.Time
	metrics     []string // requested, canonical strings (at most 16)
	limit       int
}

// decoder turns one consumption page into a ConsumptionPage, enforcing the rules of the package
// doc. Syntax errors stop it at once. Rule violations (a bad value, an unknown metric, …) are
// recorded and parsing goes on to the end of the project, so the error can name the project,
// period, timeframe and metric whatever the order of keys in the body.
type decoder struct {
	s       scanner
	o       *decodeOpts
	pending *DecodeError

	// Metric values and timeframes are collected in scratch buffers and copied into shared
	// slabs, so a page of 57,600 values costs a few hundred allocations (per project and period),
	// not one per value.
	mvScratch []MetricValue
	tfScratch []Timeframe
	mvSlab    []MetricValue
	tfSlab    []Timeframe
	chunk     int
}

func decodeConsumption(body []byte, o *decodeOpts) (*ConsumptionPage, error) {
	chunk := min(max(len(body)/48, 16), 1<<15)
	d := &decoder{s: scanner{b: body}, o: o, chunk: chunk}
	page, err := d.page()
	if err != nil {
		return nil, err
	}
	return page, nil
}

// violation records the first rule violation at the current offset.
func (d *decoder) violation(metric, format string, args ...any) {
	if d.pending == nil {
		d.pending = &DecodeError{Offset: d.s.i, Metric: metric, Reason: fmt.Sprintf(format, args...)}
	}
}

// field is a key an object may hold once, and the reader of its value.
type field struct {
	name string
	read func() error
}

// object reads one object. The value of a key of fields is read by its reader, once at most; any
// other key's by other, or skipped when other is nil. seen has bit i set when fields[i] was read.
func (d *decoder) object(other func(key []byte) error, fields ...field) (seen uint16, err error) {
	more, err := d.s.enter('{', '}')
	for err == nil && more {
		var k []byte
		if k, err = d.s.key(); err != nil {
			break
		}
		err = d.value(k, &seen, other, fields)
		if err == nil {
			more, err = d.s.next('}')
		}
	}
	return seen, err
}

// value reads the value of key k of an object.
func (d *decoder) value(k []byte, seen *uint16, other func(key []byte) error, fields []field) error {
	for i, f := range fields {
		if string(k) == f.name {
			// A key repeated in one object: which value counts would be a guess.
			if *seen&(1<<i) != 0 {
				return &DecodeError{Offset: d.s.i, Reason: fmt.Sprintf("field %q repeated in one object", k)}
			}
			*seen |= 1 << i
			return f.read()
		}
	}
	if other != nil {
		return other(k)
	}
	return d.s.skip(0)
}

// array reads one array, calling elem to read each element.
func (d *decoder) array(elem func() error) error {
	more, err := d.s.enter('[', ']')
	for err == nil && more {
		if err = elem(); err == nil {
			more, err = d.s.next(']')
		}
	}
	return err
}

func (d *decoder) page() (*ConsumptionPage, error) {
	page := &ConsumptionPage{}
	seen, err := d.object(nil,
		field{"projects", func() error { return d.projects(page) }},
		field{"pagination", func() (err error) {
			if !d.s.literal("null") {
				page.Cursor, err = d.pagination()
			}
			return err
		}})
	if err == nil {
		err = d.s.end()
	}
	if err != nil {
		return nil, err
	}
	if seen&1 == 0 {
		return nil, &DecodeError{Offset: d.s.i, Reason: `"projects" missing`}
	}
	return page, nil
}

func (d *decoder) pagination() (string, error) {
	var cursor string
	_, err := d.object(nil, field{"cursor", func() error {
		c, err := d.s.str()
		if err != nil {
			return err
		}
		if !validCursor(c) {
			return &DecodeError{Offset: d.s.i, Reason: fmt.Sprintf("cursor %q is longer than %d bytes or not printable ASCII", clip(c), maxCursor)}
		}
		cursor = string(c)
		return nil
	}})
	return cursor, err
}

func (d *decoder) projects(page *ConsumptionPage) error {
	return d.array(func() error {
		p, err := d.project()
		if err == nil {
			page.Projects = append(page.Projects, p)
		}
		return err
	})
}

func (d *decoder) project() (ProjectConsumption, error) {
	var pc ProjectConsumption
	seen, err := d.object(nil,
		field{"project_id", func() error {
			id, err := d.s.str()
			if err == nil {
				pc.ProjectID = string(id)
				if !ValidID(pc.ProjectID) {
					d.violation("", "project_id %q does not match ^[a-z0-9-]{1,60}$", clip(id))
				}
			}
			return err
		}},
		field{"periods", func() error { return d.periods(&pc) }})
	if err != nil {
		return pc, err
	}
	switch {
	case seen&1 == 0:
		d.violation("", `"project_id" missing`)
	case seen&2 == 0:
		d.violation("", `"periods" missing`)
	}
	if d.pending != nil {
		if d.pending.Project == "" {
			d.pending.Project = pc.ProjectID
		}
		return pc, d.pending
	}
	return pc, nil
}

func (d *decoder) periods(pc *ProjectConsumption) error {
	return d.array(func() error {
		p, err := d.period()
		if err != nil {
			return err
		}
		for _, q := range pc.Periods {
			if q.ID == p.ID {
				d.violation("", "period_id %q repeated in one project", p.ID)
			}
		}
		pc.Periods = append(pc.Periods, p)
		return nil
	})
}

func (d *decoder) period() (Period, error) {
	var p Period
	had := d.pending != nil
	label := func(dst *string, name string, spaces bool) field {
		return field{name, func() error {
			v, err := d.s.str()
			if err == nil {
				*dst = d.label(name, v, spaces)
			}
			return err
		}}
	}
	seen, err := d.object(nil,
		label(&p.ID, "period_id", false),
		label(&p.Plan, "period_plan", true),
		field{"period_start", func() (err error) { p.Start, err = d.time("period_start"); return err }},
		field{"period_end", func() (err error) {
			if !d.s.literal("null") {
				p.End, err = d.time("period_end")
			}
			return err
		}},
		field{"consumption", func() (err error) { p.Consumption, err = d.timeframes(); return err }})
	if err != nil {
		return p, err
	}
	for _, f := range []struct {
		bit  uint16
		name string
	}{{1, "period_id"}, {2, "period_plan"}, {4, "period_start"}, {16, "consumption"}} {
		if seen&f.bit == 0 {
			d.violation("", "%q missing", f.name)
		}
	}
	if p.ID == "" && seen&1 != 0 {
		d.violation("", "period_id is empty")
	}
	if !p.End.IsZero() && !p.End.After(p.Start) {
		d.violation("", "period_end %s is not after period_start %s", p.End.Format(time.RFC3339), p.Start.Format(time.RFC3339))
	}
	if !had && d.pending != nil && d.pending.Period == "" {
		d.pending.Period = p.ID
	}
	return p, nil
}

// Bounds of the strings a page carries into every stored row (period id and plan) or into the
// next request (cursor): an unbounded plan string copied onto each row once cost 767 MB for a
// 1 MB answer.
const (
	maxLabel  = 64
	maxCursor = 2048
)

// label returns a period id or plan if it is at most maxLabel bytes of letters, digits, '-',
// '_' and '.' (plans also spaces); otherwise it records a violation and returns "" without
// copying the text.
func (d *decoder) label(field string, v []byte, spaces bool) string {
	ok := len(v) <= maxLabel
	for _, c := range v {
		if !ok {
			break
		}
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || spaces && c == ' '
	}
	if !ok {
		d.violation("", "%s %q is longer than %d bytes or holds characters other than letters, digits, '-', '_' and '.'", field, clip(v), maxLabel)
		return ""
	}
	return string(v)
}

// validCursor reports whether a cursor is at most maxCursor bytes of printable ASCII.
func validCursor(v []byte) bool {
	if len(v) > maxCursor {
		return false
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// time reads a timestamp field; a string that is not RFC 3339 is a violation, not a syntax error.
func (d *decoder) time(field string) (time.Time, error) {
	t, raw, ok, err := d.s.timestamp()
	if err == nil && !ok {
		d.violation("", "%s %q is not an RFC 3339 timestamp", field, clip(raw))
	}
	return t, err
}

func (d *decoder) timeframes() ([]Timeframe, error) {
	d.tfScratch = d.tfScratch[:0]
	err := d.array(func() error {
		tf, err := d.timeframe()
		if err != nil {
			return err
		}
		// Buckets come oldest first, so a duplicate is found without a set; out-of-order input
		// only costs a scan.
		if n := len(d.tfScratch); n > 0 && !tf.Start.After(d.tfScratch[n-1].Start) {
			for _, prev := range d.tfScratch {
				if prev.Start.Equal(tf.Start) {
					d.violation("", "timeframe %s repeated in one period", tf.Start.Format(time.RFC3339))
					break
				}
			}
		}
		d.tfScratch = append(d.tfScratch, tf)
		return nil
	})
	if err != nil || len(d.tfScratch) == 0 {
		return nil, err
	}
	if cap(d.tfSlab)-len(d.tfSlab) < len(d.tfScratch) {
		d.tfSlab = make([]Timeframe, 0, max(d.chunk/8, len(d.tfScratch)))
	}
	n := len(d.tfSlab)
	d.tfSlab = append(d.tfSlab, d.tfScratch...)
	return d.tfSlab[n:len(d.tfSlab):len(d.tfSlab)], nil
}

func (d *decoder) timeframe() (Timeframe, error) {
	var tf Timeframe
	var metricsSeen uint16
	var startRaw []byte
	had := d.pending != nil
	d.mvScratch = d.mvScratch[:0]
	fields := []field{
		{"timeframe_start", func() error {
			var ok bool
			var err error
			tf.Start, startRaw, ok, err = d.s.timestamp()
			if err == nil && !ok {
				d.violation("", "timeframe_start %q is not an RFC 3339 timestamp", clip(startRaw))
			}
			return err
		}},
		{"timeframe_end", func() (err error) { tf.End, err = d.time("timeframe_end"); return err }},
		{"metrics", func() error { return d.metrics(&metricsSeen) }},
	}
	var other func([]byte) error
	if d.o.legacy {
		// Legacy timeframes hold their metrics as flat fields.
		fields, other = fields[:2], func(k []byte) error { return d.legacyField(k, &metricsSeen) }
	}
	seen, err := d.object(other, fields...)
	if err != nil {
		return tf, err
	}
	switch {
	case seen&1 == 0:
		d.violation("", `"timeframe_start" missing`)
	case seen&2 == 0:
		d.violation("", `"timeframe_end" missing`)
	case !d.o.legacy && seen&4 == 0:
		d.violation("", `"metrics" missing`)
	case d.pending == nil:
		d.checkBucket(tf)
	}
	tf.Metrics = d.keepMetrics()
	if !had && d.pending != nil && d.pending.Timeframe == "" {
		d.pending.Timeframe = string(startRaw)
	}
	return tf, nil
}

// checkBucket enforces the bucket rules: end after start, inside the requested window, and for
// hourly granularity aligned to the hour and exactly one hour long.
func (d *decoder) checkBucket(tf Timeframe) {
	switch {
	case !tf.End.After(tf.Start):
		d.violation("", "timeframe_end %s is not after timeframe_start", tf.End.Format(time.RFC3339))
	case d.o.granularity == GranularityHourly && !GranularityHourly.aligned(tf.Start):
		d.violation("", "hourly timeframe does not start on the hour")
	case d.o.granularity == GranularityHourly && tf.End.Sub(tf.Start) != time.Hour:
		d.violation("", "hourly timeframe lasts %s, not 1h", tf.End.Sub(tf.Start))
	case tf.Start.Before(d.o.from) || tf.End.After(d.o.to):
		d.violation("", "timeframe outside the requested window %s–%s", d.o.from.Format(time.RFC3339), d.o.to.Format(time.RFC3339))
	}
}

func (d *decoder) keepMetrics() []MetricValue {
	n := len(d.mvScratch)
	if n == 0 {
		return nil
	}
	if cap(d.mvSlab)-len(d.mvSlab) < n {
		d.mvSlab = make([]MetricValue, 0, max(d.chunk, n))
	}
	i := len(d.mvSlab)
	d.mvSlab = append(d.mvSlab, d.mvScratch...)
	return d.mvSlab[i : i+n : i+n]
}

// metricIndex finds a requested metric; the returned index also picks its canonical string, so
// names cost no allocation.
func (d *decoder) metricIndex(name []byte) int {
	for i, m := range d.o.metrics {
		if string(name) == m {
			return i
		}
	}
	return -1
}

func (d *decoder) metrics(metricsSeen *uint16) error {
	return d.array(func() error { return d.metric(metricsSeen) })
}

func (d *decoder) metric(metricsSeen *uint16) error {
	var (
		name  []byte
		value int64
		bad   string
	)
	seen, err := d.object(nil,
		field{"metric_name", func() (err error) { name, err = d.s.str(); return err }},
		field{"value", func() (err error) { value, bad, err = d.s.count(); return err }})
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		d.violation("", `"metric_name" missing`)
		return nil
	}
	i := d.metricIndex(name)
	switch {
	case i < 0:
		d.violation(clip(name), "metric %q was not requested", clip(name))
	case seen&2 == 0:
		d.violation(d.o.metrics[i], `"value" missing`)
	case bad != "":
		d.violation(d.o.metrics[i], "%s", bad)
	case *metricsSeen&(1<<i) != 0:
		d.violation(d.o.metrics[i], "metric repeated in one timeframe")
	default:
		*metricsSeen |= 1 << i
		d.mvScratch = append(d.mvScratch, MetricValue{Name: d.o.metrics[i], Value: value})
	}
	return nil
}

// legacyField reads one flat field of a legacy timeframe. Requested metrics become values (zero
// omitted); the other legacy metrics are read and dropped, since the spec makes four of them
// mandatory in every timeframe whatever was asked; any other field is an unknown metric.
func (d *decoder) legacyField(k []byte, metricsSeen *uint16) error {
	i := d.metricIndex(k)
	known := i >= 0
	if !known {
		for _, m := range LegacyMetrics() {
			if string(k) == m {
				known = true
			}
		}
	}
	if !known {
		d.violation(clip(k), "unknown field %q in a legacy timeframe", clip(k))
		return d.s.skip(0)
	}
	v, bad, err := d.s.count()
	if err != nil || i < 0 {
		return err
	}
	switch {
	case bad != "":
		d.violation(d.o.metrics[i], "%s", bad)
	case *metricsSeen&(1<<i) != 0:
		d.violation(d.o.metrics[i], "field repeated in one timeframe")
	case v != 0:
		d.mvScratch = append(d.mvScratch, MetricValue{Name: d.o.metrics[i], Value: v})
	}
	*metricsSeen |= 1 << i
	return nil
}
