package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// panicked is a panic turned into an error at a command's boundary and at each step of serve's
// cycles. Left alone, the runtime prints a panic's value to stderr unredacted, and a value can
// be an error quoting an upstream's answer; as an error it is logged through the redacting
// handler like any failure (exit code 1, or a failed step that the next cycle retries).
type panicked struct {
	value any
	stack []byte
}

// Error holds the value and the stack: stacks print addresses and numbers, never string
// contents, and the whole text passes through the redactor wherever it is logged.
func (p *panicked) Error() string { return fmt.Sprintf("panic: %v\n%s", p.value, p.stack) }

// guarded runs f and returns a panic in it as a *panicked error. It deliberately does not
// unwrap to the value: a panic is a bug, not the failure its value describes.
func guarded(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{value: v, stack: debug.Stack()}
		}
	}()
	return f()
}

// httpServer is serve's HTTP server. net/http recovers a handler's panic and logs its value,
// like its connection errors, to ErrorLog: the redacting logger here, not the standard one.
func httpServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}
}
