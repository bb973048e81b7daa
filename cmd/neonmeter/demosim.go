package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The demo drives the simulator as a separate process (bin/neonsim) so that no simulator code
// is linked into the production binary: neonmeter only ever talks to it over HTTP, as to Neon.

// demoOrg is one simulated organization as neonsim announces it.
type demoOrg struct {
	ID, Plan string
	Legacy   bool
}

// simProcess is a running neonsim.
type simProcess struct {
	cmd    *exec.Cmd
	base   string // API base URL, ending in /api/v2
	apiKey string
	orgs   []demoOrg
}

// findNeonsim returns the neonsim binary: path when given, else the one beside this executable
// (make build puts both in bin/), else the one on PATH.
func findNeonsim(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "neonsim")
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	p, err := exec.LookPath("neonsim")
	if err != nil {
		return "", usagef("the demo needs the neonsim binary: run make build, or pass --neonsim PATH")
	}
	return p, nil
}

// startSimulator starts neonsim on a free loopback port with a random API key (passed in its
// environment, never on the command line) and reads the base URL and the orgs it prints.
func startSimulator(ctx context.Context, bin string, projects int, seed int64) (*simProcess, error) {
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	p := &simProcess{apiKey: hex.EncodeToString(key)}
	p.cmd = exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--projects", fmt.Sprint(projects), "--seed", fmt.Sprint(seed))
	p.cmd.Env = append(os.Environ(), "NEONSIM_API_KEY="+p.apiKey)
	p.cmd.Stderr = io.Discard
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := p.readAnnouncement(bufio.NewScanner(out), projects); err != nil {
		p.stop()
		return nil, fmt.Errorf("neonsim: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return p, nil
}

// readAnnouncement parses "neonsim: base URL <url> (…)" and one "org <id> plan <plan> projects
// <n> route <v2|legacy>" line per org.
func (p *simProcess) readAnnouncement(sc *bufio.Scanner, projects int) error {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[0] == "neonsim:" && f[1] == "base" && f[2] == "URL":
			p.base = f[3]
		case len(f) == 8 && f[0] == "org":
			p.orgs = append(p.orgs, demoOrg{ID: f[1], Plan: f[3], Legacy: f[7] == "legacy"})
		}
		if p.base != "" && len(p.orgs) == 4 {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("exited before announcing its URL and four orgs (%d projects asked)", projects)
}

// wakes reads the simulator's counter of woken idle computes from its debug route.
func (p *simProcess) wakes(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.base, "/api/v2")+"/debug/stats", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("simulator stats: %w", err)
	}
	defer resp.Body.Close()
	var st struct{ Wakes int64 }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return 0, fmt.Errorf("simulator stats: %w", err)
	}
	return st.Wakes, nil
}

// stop ends the simulator and waits for it.
func (p *simProcess) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	_ = p.cmd.Wait()
}
