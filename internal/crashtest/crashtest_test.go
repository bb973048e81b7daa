package crashtest_test

import (
	"errors"
	"os"
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
		}
		return nil
	})
}

func TestChild_ExitsKillsAndReports(t *testing.T) {
	if err := <-crashtest.Start(t, "CRASHTEST_MODE=ok").Done; err != nil {
		t.Fatalf("a child that succeeds exited with %v", err)
	}
	c := crashtest.Start(t, "CRASHTEST_MODE=fail")
	if err := <-c.Done; err == nil || !strings.Contains(c.Output(), "asked to fail") {
		t.Fatalf("a failing child: exit %v, output %q", err, c.Output())
	}
	hung := crashtest.Start(t, "CRASHTEST_MODE=hang")
	select {
	case err := <-hung.Done:
		t.Fatalf("a hanging child ended by itself: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	hung.Kill()
	if time.Since(start) > 10*time.Second {
		t.Fatal("Kill did not end the child")
	}
}
