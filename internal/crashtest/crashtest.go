// Package crashtest runs a test binary again as a child process so that a test can kill it with
// SIGKILL at a moment of its choosing: the crash-safety tests of the collector, billing and
// enforcement, which then check that a re-run repairs whatever the child left half done.
package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// envChild marks a test binary started as a child.
const envChild = "NEONMETER_TEST_CRASH_CHILD"

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
