// Package runid names runs: every stage's run (a sweep, a sync, a push, a cycle) gets an id of
// one format, sortable by start time and unique across hosts.
package runid

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// New returns "<kind>-<UTC start, seconds>-<16 hex digits>", like
// "collect-20261203T102900Z-9f86d081884c7d65". kind names the job.
func New(kind string, start time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return kind + "-" + start.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
