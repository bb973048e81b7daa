// Package redacttest checks text for what redaction must have removed; the tests of every
// layer that redacts (the redactor itself, the Stripe client, the commands) share it.
package redacttest

import (
	"strings"

	"github.com/neonmeter/neonmeter/internal/redact"
)

// Leak returns the longest prefix of secret, at least redact.MinPrefix bytes long, that s
// holds, or "" when it holds none: a redactor's output must give "".
func Leak(s, secret string) string {
	for n := len(secret); n >= redact.MinPrefix; n-- {
		if strings.Contains(s, secret[:n]) {
			return secret[:n]
		}
	}
	return ""
}
