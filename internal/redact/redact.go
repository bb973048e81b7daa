// Package redact removes configured secrets from text before it leaves the process: errors,
// log records, stored rows and the bodies upstream services answer with. It is the one
// redaction layer every outbound client and every log handler of neonmeter goes through.
//
// A secret is removed whole, in its "Bearer <secret>" form (the token part is the secret), and
// as any prefix of it at least MinPrefix bytes long, so a message cut in the middle of a key
// by a length limit still leaks none of it. Redact before truncating: a prefix shorter than
// MinPrefix that a later cut leaves behind is not recognizable as a secret.
package redact

import (
	"slices"
	"sort"
	"strings"
)

// Placeholder replaces every removed secret.
const Placeholder = "[redacted]"

// MinPrefix is the shortest prefix of a secret that is recognized and removed. Shorter
// fragments are too common in ordinary text to remove without mangling it.
const MinPrefix = 8

// minSecret is the shortest secret redacted at all: removing every occurrence of a one- or
// three-letter password would garble every message while protecting nothing.
const minSecret = 4

// Redactor removes a fixed set of secrets. The zero value and a nil *Redactor remove nothing.
// It is safe for concurrent use.
type Redactor struct {
	secrets []string // longest first, so a longer secret wins over one it contains
}

// New returns a Redactor for secrets; empty and very short ones (under 4 bytes) are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= minSecret && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// With returns a Redactor that removes r's secrets and these; r may be nil.
func (r *Redactor) With(secrets ...string) *Redactor {
	if r != nil {
		secrets = append(secrets, r.secrets...)
	}
	return New(secrets...)
}

// Empty reports whether r removes nothing.
func (r *Redactor) Empty() bool { return r == nil || len(r.secrets) == 0 }

// String returns s with every secret, and every prefix of one at least MinPrefix long,
// replaced by Placeholder. It returns s itself when nothing matched.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	for _, secret := range r.secrets {
		s = removePrefixes(s, secret)
	}
	return s
}

// Bytes is String for a byte slice; it returns b itself when nothing matched.
func (r *Redactor) Bytes(b []byte) []byte {
	if r.Empty() {
		return b
	}
	s := string(b)
	if out := r.String(s); out != s {
		return []byte(out)
	}
	return b
}

// removePrefixes replaces, left to right, each longest run of s that equals a prefix of secret
// of at least MinPrefix bytes (or the whole secret when it is shorter).
func removePrefixes(s, secret string) string {
	head := secret[:min(len(secret), MinPrefix)]
	i := strings.Index(s, head)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		n := len(head)
		for n < len(secret) && i+n < len(s) && s[i+n] == secret[n] {
			n++
		}
		b.WriteString(s[:i])
		b.WriteString(Placeholder)
		s = s[i+n:]
		i = strings.Index(s, head)
	}
	b.WriteString(s)
	return b.String()
}

// Error returns err with a redacted message, or err itself when its message holds no secret
// (and nil for nil). The result still matches what err matched with errors.Is and errors.As:
// callers classify upstream errors by their type. Their text fields are clean when the bytes
// they were decoded from went through Transport, as every Stripe client's do.
func (r *Redactor) Error(err error) error {
	if err == nil || r.Empty() {
		return err
	}
	msg := err.Error()
	clean := r.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, cause: err}
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
