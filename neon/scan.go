package neon

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// scanner is a strict, allocation-free JSON reader over a complete body, enough for the fixed
// shapes of consumption pages. Every read is bounds-checked: no input makes it panic, and
// unknown values are skipped with a depth limit so nesting cannot exhaust the stack.
type scanner struct {
	b []byte
	i int
}

// maxSkipDepth bounds the nesting of values skipped as unknown.
const maxSkipDepth = 64

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) errorf(format string, args ...any) *DecodeError {
	return &DecodeError{Offset: s.i, Reason: "invalid JSON: " + fmt.Sprintf(format, args...)}
}

func (s *scanner) unexpected(want string) *DecodeError {
	if s.i >= len(s.b) {
		return s.errorf("unexpected end of body, want %s", want)
	}
	return s.errorf("unexpected %q, want %s", s.b[s.i], want)
}

// enter consumes open and reports whether the container holds an element.
func (s *scanner) enter(open, close byte) (bool, error) {
	if s.peek() != open {
		return false, s.unexpected(string(open))
	}
	s.i++
	if s.peek() == close {
		s.i++
		return false, nil
	}
	return true, nil
}

// next consumes the separator after an element and reports whether another follows.
func (s *scanner) next(close byte) (bool, error) {
	switch s.peek() {
	case ',':
		s.i++
		return true, nil
	case close:
		s.i++
		return false, nil
	}
	return false, s.unexpected(`"," or "` + string(close) + `"`)
}

// key reads an object key and its colon. The slice aliases the body unless it had escapes.
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.unexpected("object key")
	}
	k, err := s.str()
	if err != nil {
		return nil, err
	}
	if s.peek() != ':' {
		return nil, s.unexpected(`":"`)
	}
	s.i++
	return k, nil
}

// str reads a string at s.i (after whitespace). Without escapes it returns a sub-slice of the
// body; escaped strings go through encoding/json, which is rare and exact.
func (s *scanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.unexpected("string")
	}
	start := s.i
	j := s.i + 1
	ascii, escaped := true, false
	for {
		// Fast path over plain ASCII, which is all Neon sends in practice.
		for j < len(s.b) {
			if c := s.b[j]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				break
			}
			j++
		}
		if j >= len(s.b) {
			s.i = j
			return nil, s.errorf("unterminated string")
		}
		c := s.b[j]
		if c == '"' {
			break
		}
		switch {
		case c == '\\':
			escaped = true
			j++ // the escaped byte can't end the string
		case c < 0x20:
			s.i = j
			return nil, s.errorf("control character in string")
		case c >= 0x80:
			ascii = false
		}
		j++
	}
	raw := s.b[start+1 : j]
	s.i = j + 1
	if !ascii && !utf8.Valid(raw) {
		s.i = start
		return nil, s.errorf("string is not valid UTF-8")
	}
	if !escaped {
		return raw, nil
	}
	var out string
	if err := json.Unmarshal(s.b[start:j+1], &out); err != nil {
		s.i = start
		return nil, s.errorf("bad string escape")
	}
	return []byte(out), nil
}

// literal consumes lit (true, false, null) if it is next.
func (s *scanner) literal(lit string) bool {
	s.ws()
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number scans a JSON number token; kind tells integers from fractions and exponents.
func (s *scanner) number() (tok []byte, integer bool, err error) {
	s.ws()
	start, j := s.i, s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	switch {
	case j < len(s.b) && s.b[j] == '0':
		j++
	case j < len(s.b) && s.b[j] >= '1' && s.b[j] <= '9':
		j = s.digits(j)
	default:
		s.i = j
		return nil, false, s.unexpected("digit")
	}
	integer = true
	if j < len(s.b) && s.b[j] == '.' {
		integer = false
		if j, err = s.someDigits(j+1, "digit after decimal point"); err != nil {
			return nil, false, err
		}
	}
	if j < len(s.b) && (s.b[j] == 'e' || s.b[j] == 'E') {
		integer = false
		j++
		if j < len(s.b) && (s.b[j] == '+' || s.b[j] == '-') {
			j++
		}
		if j, err = s.someDigits(j, "digit in exponent"); err != nil {
			return nil, false, err
		}
	}
	s.i = j
	return s.b[start:j], integer, nil
}

// digits returns the index after the run of digits starting at j.
func (s *scanner) digits(j int) int {
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	return j
}

// someDigits is digits for a run that must not be empty; an empty one is unexpected, wanting what.
func (s *scanner) someDigits(j int, what string) (int, error) {
	end := s.digits(j)
	if end == j {
		s.i = j
		return j, s.unexpected(what)
	}
	return end, nil
}

// count reads a value that must be a non-negative integer within int64. A value of another kind
// is consumed and reported in bad (the caller decides, naming the metric); err is a syntax error.
func (s *scanner) count() (v int64, bad string, err error) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		kind := jsonKind(c)
		if err := s.skip(0); err != nil {
			return 0, "", err
		}
		return 0, "value is " + kind + ", not an integer", nil
	}
	tok, integer, err := s.number()
	if err != nil {
		return 0, "", err
	}
	switch {
	case !integer:
		return 0, fmt.Sprintf("value %s is not an integer", clip(tok)), nil
	case tok[0] == '-':
		return 0, fmt.Sprintf("value %s is negative", clip(tok)), nil
	}
	for _, d := range tok {
		n := int64(d - '0')
		if v > (math.MaxInt64-n)/10 {
			return 0, fmt.Sprintf("value %s exceeds int64", clip(tok)), nil
		}
		v = v*10 + n
	}
	return v, "", nil
}

func jsonKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "not JSON"
}

// clip keeps quoted body text short in error messages.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// skip consumes any value, validating its syntax.
func (s *scanner) skip(depth int) error {
	if depth > maxSkipDepth {
		return s.errorf("nested deeper than %d", maxSkipDepth)
	}
	switch c := s.peek(); c {
	case '{':
		more, err := s.enter('{', '}')
		for err == nil && more {
			if _, err = s.key(); err == nil {
				if err = s.skip(depth + 1); err == nil {
					more, err = s.next('}')
				}
			}
		}
		return err
	case '[':
		more, err := s.enter('[', ']')
		for err == nil && more {
			if err = s.skip(depth + 1); err == nil {
				more, err = s.next(']')
			}
		}
		return err
	case '"':
		_, err := s.str()
		return err
	case 't':
		if s.literal("true") {
			return nil
		}
	case 'f':
		if s.literal("false") {
			return nil
		}
	case 'n':
		if s.literal("null") {
			return nil
		}
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, err := s.number()
			return err
		}
	}
	return s.unexpected("JSON value")
}

// end checks that nothing but whitespace follows the top-level value.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i < len(s.b) {
		return s.unexpected("end of body")
	}
	return nil
}

// timestamp reads an RFC 3339 string; ok is false (and err nil) when the string is not one.
func (s *scanner) timestamp() (t time.Time, raw []byte, ok bool, err error) {
	raw, err = s.str()
	if err != nil {
		return time.Time{}, nil, false, err
	}
	t, ok = parseTimeUTC(raw)
	return t, raw, ok, nil
}

// parseTimeUTC parses RFC 3339 into UTC. The form Neon sends, "2006-01-02T15:04:05Z", is parsed
// by hand (time.Parse dominated decoding); any other form falls back to time.Parse.
func parseTimeUTC(b []byte) (time.Time, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		sec, ok6 := digits(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 &&
			mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(mo, y) && h < 24 && mi < 60 && sec < 60 {
			return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC), true
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
