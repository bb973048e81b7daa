package crashtest

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build builds the commands pkgs (package paths as go build takes them, relative to the test's
// package) into a new temporary directory and returns it: each binary is there under its
// package's last path element ("neonmeter"). The build cache makes repeats cheap.
func Build(t testing.TB, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("crashtest: go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return dir
}

// FreeAddr returns a loopback host:port that nothing listens on when it returns: for a child to
// listen on, or for a client to find nobody at.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
