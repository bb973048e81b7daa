package crashtest_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/crashtest"
)

func TestMain(m *testing.M) {
	crashtest.Main(m, func() error {
		switch os.Getenv("CRASHTEST_MODE") {
		case "fail":
			return errors.New("asked to fail")
		case "hang":
			time.Sleep(time.Hour)
		case "settings":
			var s childSettings
			if err := crashtest.Settings(&s); err != nil {
				return err
			}
			if s != wantSettings {
				return errors.New("got settings " + s.URL + " " + s.Every.String() + ", want others")
			}
		}
		return nil
	})
}

type childSettings struct {
	URL   string
	Every time.Duration
}

var wantSettings = childSettings{URL: "http://127.0.0.1:1/a b", Every: 1500 * time.Millisecond}

func TestStartWith_HandsTheChildItsSettings(t *testing.T) {
	c := crashtest.StartWith(t, wantSettings, "CRASHTEST_MODE=settings")
	if err := <-c.Done; err != nil {
		t.Fatalf("the child did not read its settings: %v\n%s", err, c.Output())
	}
	c = crashtest.StartWith(t, childSettings{URL: "other"}, "CRASHTEST_MODE=settings")
	if err := <-c.Done; err == nil || !strings.Contains(c.Output(), "want") {
		t.Fatalf("a child given other settings: exit %v, output %q", err, c.Output())
	}
}

func TestChild_ExitsKillsAndReports(t *testing.T) {
	if err := <-crashtest.Start(t, "CRASHTEST_MODE=ok").Done; err != nil {
		t.Fatalf("a child that succeeds exited with %v", err)
	}
	c := crashtest.Start(t, "CRASHTEST_MODE=fail")
	if exited, err := c.Exited(time.Minute); !exited || err == nil || !strings.Contains(c.Output(), "asked to fail") {
		t.Fatalf("a failing child: exited %v with %v, output %q", exited, err, c.Output())
	}
	hung := crashtest.Start(t, "CRASHTEST_MODE=hang")
	if exited, err := hung.Exited(100 * time.Millisecond); exited {
		t.Fatalf("a hanging child ended by itself: %v", err)
	}
	start := time.Now()
	hung.Kill()
	if time.Since(start) > 10*time.Second {
		t.Fatal("Kill did not end the child")
	}
}

func TestKillWithin_KillsOnlyAChildStillRunning(t *testing.T) {
	if crashtest.KillWithin(t, "ok", time.Minute, nil, "CRASHTEST_MODE=ok") {
		t.Fatal("a child that ended by itself was reported killed")
	}
	start := time.Now()
	if !crashtest.KillWithin(t, "hang", 100*time.Millisecond, nil, "CRASHTEST_MODE=hang") {
		t.Fatal("a hanging child was reported ended by itself")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("KillWithin did not end the hanging child")
	}
}

// Build compiles a command into a directory of its own, under the package's name, and the
// binary runs.
func TestBuild_CommandRunsUnderItsName(t *testing.T) {
	dir := crashtest.Build(t, "./testdata/hello")
	out, err := exec.Command(filepath.Join(dir, "hello")).CombinedOutput()
	if err != nil {
		t.Fatalf("run the built command: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hello from a built command" {
		t.Fatalf("built command printed %q", got)
	}
}

// FreeAddr gives an address nobody listens on (a dial fails) that can be listened on.
func TestFreeAddr_NobodyListensThere(t *testing.T) {
	addr := crashtest.FreeAddr(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the free address: %v", err)
	}
	ln.Close()
}
