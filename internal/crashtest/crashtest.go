// Package crashtest runs a test binary again as a child process so that a test can kill it with
// SIGKILL at a moment of its choosing: the crash-safety tests of the collector, billing and
// enforcement, which then check that a re-run repairs whatever the child left half done. For
// tests that run the real commands as children instead, Build compiles them and FreeAddr gives
// one an address to listen on.
package crashtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// envChild marks a test binary started as a child; envSettings carries its settings (JSON).
const (
	envChild    = "NEONMETER_TEST_CRASH_CHILD"
	envSettings = "NEONMETER_TEST_CRASH_SETTINGS"
)

// Main is the body of a package's TestMain: in a child process it runs child and exits (status
// 1 with the error on stderr when it fails); otherwise it runs the tests.
func Main(m *testing.M, child func() error) {
	if os.Getenv(envChild) == "1" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Child is a running child process.
type Child struct {
	cmd *exec.Cmd
	out *limitedBuffer
	// Done receives the child's exit error once, when it ends.
	Done <-chan error
}

// Start runs the test binary as a child, with env (KEY=VALUE) added to this process's
// environment. The child runs no test: it runs the function given to Main.
func Start(t testing.TB, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"=1"), env...)
	out := &limitedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("crashtest: start child: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return &Child{cmd: cmd, out: out, Done: done}
}

// StartWith runs the test binary as a child, as Start does, handing it settings (a value that
// encodes to JSON), which the child reads with Settings.
func StartWith(t testing.TB, settings any, env ...string) *Child {
	t.Helper()
	b, err := json.Marshal(settings)
	if err != nil {
		t.Fatalf("crashtest: child settings: %v", err)
	}
	return Start(t, append(env, envSettings+"="+string(b))...)
}

// Settings decodes into v the settings the parent gave StartWith.
func Settings(v any) error {
	if err := json.Unmarshal([]byte(os.Getenv(envSettings)), v); err != nil {
		return fmt.Errorf("crashtest: child settings: %w", err)
	}
	return nil
}

// Exited waits up to d for the child to end by itself and reports whether it did, with its
// exit error. A child that exited has been waited for: do not Kill it.
func (c *Child) Exited(d time.Duration) (bool, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-c.Done:
		return true, err
	case <-timer.C:
		return false, nil
	}
}

// KillWithin starts a child as StartWith does and kills it with SIGKILL unless it ends by itself
// within d; it reports whether it killed it. A child that ends by itself with an error fails
// the test, naming what it was doing (what) and quoting its output.
func KillWithin(t testing.TB, what string, d time.Duration, settings any, env ...string) (killed bool) {
	t.Helper()
	c := StartWith(t, settings, env...)
	exited, err := c.Exited(d)
	if !exited {
		c.Kill()
		return true
	}
	if err != nil {
		t.Fatalf("child %s failed on its own: %v\n%s", what, err, c.Output())
	}
	return false
}

// Kill sends SIGKILL and waits until the process is gone.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.Done
}

// Output returns the first 64 KiB the child printed.
func (c *Child) Output() string { return c.out.String() }

// limitedBuffer keeps the first 64 KiB written to it; the child writes from its own goroutines.
type limitedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
