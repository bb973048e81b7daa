package plans

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// CatalogVersion is the only catalog format version this build reads.
const CatalogVersion = 1

// DefaultWarnAt returns the warning thresholds, in percent of a limit, used when neither the
// limit nor the catalog sets its own: 80 % and 100 %.
func DefaultWarnAt() []int { return []int{80, 100} }

// Catalog is a validated plan catalog. Build it with Load or Parse; its methods only read.
type Catalog struct {
	// Plans in the file's order.
	Plans    []*Plan
	byName   map[string]*Plan
	byLookup map[string]*Plan
}

// Plan is what one plan allows and how it is billed.
type Plan struct {
	Name        string
	Description string
	// LookupKeys are the Stripe price lookup_keys that put a subscription on this plan
	// (default: the plan's name). A product's metadata neonmeter_plan may name the plan too.
	LookupKeys []string
	Neon       NeonSettings
	// Limits by metric name; a metric without an entry is not limited.
	Limits map[string]Limit
	// Billing by metric name; a metric without an entry is not billed on this plan.
	Billing map[string]Billing
}

// NeonSettings are the compute settings enforcement keeps every project of the plan at.
type NeonSettings struct {
	// ManageAutoscaling is false when the plan leaves compute sizes as they are.
	ManageAutoscaling bool
	// MinCU and MaxCU are autoscaling_limit_min_cu and autoscaling_limit_max_cu (≥ 0.25).
	MinCU, MaxCU float64
	// ManageSuspend is false when the plan leaves the suspend timeout as it is.
	ManageSuspend bool
	// SuspendTimeoutSeconds is Neon's suspend_timeout_seconds: -1 never suspends, otherwise
	// 60 … 604800.
	SuspendTimeoutSeconds int64
}

// LimitKind says what happens when usage reaches a limit.
type LimitKind string

const (
	// KindHard suspends the project's computes at 100 %.
	KindHard LimitKind = "hard"
	// KindSoft throttles and bills the overage; the plan must bill the metric.
	KindSoft LimitKind = "soft"
	// KindNone never acts; warnings still fire when a maximum is set.
	KindNone LimitKind = "none"
)

// Limit is a plan's allowance of one metric per billing period (for sizes: at any moment).
type Limit struct {
	Metric string
	Kind   LimitKind
	// Max is the allowance in the metric's raw unit (CU-seconds, bytes, byte-hours, …).
	Max uint64
	// Unlimited is set when no maximum is given (only with KindNone); Max is then 0.
	Unlimited bool
	// WarnAt are the warning thresholds in percent of Max, ascending.
	WarnAt []int
}

// Threshold is one warning level of a limit.
type Threshold struct {
	Percent int
	// Value is the raw usage at which the warning fires: ceil(Max × Percent / 100).
	Value uint64
}

// Thresholds returns the raw usage at each warning level; none when the limit is unlimited.
func (l Limit) Thresholds() []Threshold {
	if l.Unlimited {
		return nil
	}
	out := make([]Threshold, len(l.WarnAt))
	for i, p := range l.WarnAt {
		v := new(big.Int).Mul(new(big.Int).SetUint64(l.Max), big.NewInt(int64(p)))
		v.Add(v, big.NewInt(99))
		v.Quo(v, big.NewInt(100))
		out[i] = Threshold{Percent: p, Value: v.Uint64()}
	}
	return out
}

// Billing is how one metric of a plan reaches Stripe.
type Billing struct {
	Metric string
	// MeterEventName is the Stripe Billing Meter's event_name; empty when PriceID is set.
	MeterEventName string
	// PriceID is the legacy metered price (usage records) of the metric; empty with a meter.
	PriceID string
	// Unit is the billing unit as written in the catalog, like "CU-hour".
	Unit string
	// Divisor is how many raw units make one billing unit (3600 for CU-seconds → CU-hours).
	Divisor  uint64
	Rounding Rounding
}

// Plan returns the plan named name.
func (c *Catalog) Plan(name string) (*Plan, bool) {
	p, ok := c.byName[name]
	return p, ok
}

// PlanForLookupKey returns the plan a Stripe price lookup_key puts a subscription on.
func (c *Catalog) PlanForLookupKey(key string) (*Plan, bool) {
	p, ok := c.byLookup[key]
	return p, ok
}

// Names returns the plan names in the file's order.
func (c *Catalog) Names() []string {
	out := make([]string, len(c.Plans))
	for i, p := range c.Plans {
		out[i] = p.Name
	}
	return out
}

// Limit returns the plan's limit of metric.
func (p *Plan) Limit(metric string) (Limit, bool) {
	l, ok := p.Limits[metric]
	return l, ok
}

// BillingFor returns how the plan bills metric.
func (p *Plan) BillingFor(metric string) (Billing, bool) {
	b, ok := p.Billing[metric]
	return b, ok
}

// Problem is one thing wrong with a catalog file.
type Problem struct {
	File string
	// Line is the 1-based line of the offending node, 0 when unknown.
	Line int
	// Plan is the plan's name (or "#N" for a plan without one); empty for catalog-wide problems.
	Plan string
	// Field is the path of the field inside the plan (or the catalog), like
	// "limits.compute_unit_seconds.max".
	Field   string
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Plan != "" {
		fmt.Fprintf(&b, "plan %q: ", p.Plan)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem of a catalog file.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("plan catalog has %d problem(s):\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// Load reads and validates the catalog at path. A bad catalog returns a *ValidationError
// listing every problem.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan catalog: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a catalog held in data; name is used in problems (a file name).
func Parse(name string, data []byte) (*Catalog, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ValidationError{Problems: yamlProblems(name, data, err)}
	}
	var raw fileCatalog
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF; compile then reports that it has no plans.
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: yamlProblems(name, data, err)}
	}
	c, problems := compile(name, &root, raw)
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
var yamlNotFound = regexp.MustCompile(`field (\S+) not found in type \S+`)
var yamlUnmarshal = regexp.MustCompile(`cannot unmarshal !!(\w+) ` + "`" + `([^` + "`" + `]*)` + "`" + ` into \S+`)

// yamlParserProblem matches the messages of the YAML library's parser, which counts lines from
// 0 where its scanner counts from 1 (and which omits line 0 altogether).
var yamlParserProblem = regexp.MustCompile(`^(?:yaml: )?(?:did not find expected (?:<document start>|<stream-start>|node content|key|'-' indicator|',' or '\]'|',' or '\}')|found (?:duplicate %TAG directive|duplicate %YAML directive|incompatible YAML document|undefined tag handle))$`)

// yamlUnknownAnchor is the one decoder error the library does not locate.
var yamlUnknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// yamlProblems turns the YAML library's errors into problems with line numbers, in the words
// of the catalog rather than of Go types.
func yamlProblems(file string, data []byte, err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{File: file, Message: m}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Message = sub[2]
		}
		p.Line = yamlProblemLine(data, p.Line, p.Message)
		p.Message = yamlNotFound.ReplaceAllString(p.Message, "unknown field $1")
		p.Message = yamlUnmarshal.ReplaceAllString(p.Message, "$2 is not a valid value here (a YAML $1)")
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// yamlProblemLine returns the 1-based line of a YAML library message that gave line (0 when it
// gave none): the library omits the first line of a file, counts its parser's lines from 0,
// and gives no position for bad characters or an unknown anchor, which are found in data.
func yamlProblemLine(data []byte, line int, msg string) int {
	switch {
	case yamlParserProblem.MatchString(msg):
		// At the end of a file without a final newline the library counts one line more.
		return min(line+1, lineOfOffset(data, len(data)))
	case line > 0:
		return line
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode") || strings.Contains(msg, "control characters"):
		return lineOfOffset(data, firstBadRune(data))
	}
	if sub := yamlUnknownAnchor.FindStringSubmatch(msg); sub != nil {
		if i := bytes.Index(data, []byte("*"+sub[1])); i >= 0 {
			return lineOfOffset(data, i)
		}
	}
	return 1
}

// firstBadRune returns the offset of the first byte the YAML reader refuses: invalid UTF-8 or a
// character outside YAML's printable set; len(data) when there is none.
func firstBadRune(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		ok := r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
		if !ok || r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// lineOfOffset is the 1-based line holding byte off of data.
func lineOfOffset(data []byte, off int) int {
	return bytes.Count(data[:min(off, len(data))], []byte("\n")) + 1
}

// The file's shape. Fields are decoded strictly: an unknown key is a problem, so a typo never
// silently drops a limit.
type fileCatalog struct {
	Version *int       `yaml:"version"`
	WarnAt  []int      `yaml:"warn_at"`
	Plans   []filePlan `yaml:"plans"`
}

type filePlan struct {
	Name        string                 `yaml:"name"`
	Description string                 `yaml:"description"`
	Stripe      fileStripe             `yaml:"stripe"`
	Neon        *fileNeon              `yaml:"neon"`
	Limits      map[string]fileLimit   `yaml:"limits"`
	Billing     map[string]fileBilling `yaml:"billing"`
}

type fileStripe struct {
	LookupKeys []string `yaml:"lookup_keys"`
}

type fileNeon struct {
	MinCU          *float64 `yaml:"autoscaling_min_cu"`
	MaxCU          *float64 `yaml:"autoscaling_max_cu"`
	SuspendTimeout string   `yaml:"suspend_timeout"`
}

type fileLimit struct {
	Kind   string `yaml:"kind"`
	Max    scalar `yaml:"max"`
	WarnAt []int  `yaml:"warn_at"`
}

type fileBilling struct {
	Meter    string `yaml:"meter"`
	Price    string `yaml:"price"`
	Unit     string `yaml:"unit"`
	Rounding string `yaml:"rounding"`
}

// scalar keeps a YAML scalar's text as written, so "100h", 100 and -5 all reach the unit
// parser, which reports problems in the catalog's terms.
type scalar struct {
	text string
	set  bool
}

func (s *scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		// A TypeError is collected with the other problems instead of stopping the decoder.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: max must be a single value like \"100h\" or \"5 GB\"", n.Line)}}
	}
	s.text, s.set = n.Value, true
	return nil
}

// BilledMetrics lists every metric some plan of the catalogs bills, sorted: what billing reads
// from usage, and what a what-if run re-rates.
func BilledMetrics(cats ...*Catalog) []string {
	seen := map[string]bool{}
	for _, c := range cats {
		for _, p := range c.Plans {
			for m := range p.Billing {
				seen[m] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
