// Package redacttest checks for what redaction must have removed; the tests of every layer
// that redacts (the redactor itself, the clients, the commands) and the soak's final check
// share it.
//
// Leak checks one string. The scans look for any prefix of a secret at least redact.MinPrefix
// bytes long (what the redactor removes) in everything a run leaves behind and name each place:
// ScanText and ScanReader (logs, command output, a /metrics scrape: "name:line"), ScanDir (a
// tree of files, .gz included: "path:line") and ScanClickHouse (every String-like column of
// every table: "db.table.column"). A Finding never holds the secret, so tests may print it.
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
