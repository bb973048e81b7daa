package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthzPath is the route serve answers health on and the image's HEALTHCHECK asks.
const healthzPath = "/healthz"

// HealthcheckCommand asks a running serve for /healthz: the container image has no shell or
// curl, so its HEALTHCHECK runs this.
type HealthcheckCommand struct{ *Env }

func (c *HealthcheckCommand) Synopsis() string {
	return "ask the serve on NEONMETER_LISTEN_ADDR for /healthz; exit 0 when healthy (container HEALTHCHECK)"
}

func (c *HealthcheckCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: neonmeter healthcheck [--timeout 5s]

GETs http://NEONMETER_LISTEN_ADDR/healthz (an unspecified host such as 0.0.0.0 is asked on
loopback) and exits 0 on 200, 1 otherwise, printing serve's answer. Reads no secret.

Flags:`)
		fs.PrintDefaults()
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	// Only the listen address is needed: no validation of the rest, no secret files read.
	var cfg Config
	if err := processEnv(&cfg); err != nil {
		return usagef("config: %v", err)
	}
	url, err := healthURL(cfg.ListenAddr)
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return probe(ctx, c.Stdout, url)
}

// healthURL is the /healthz URL of a serve listening on addr.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("%s_LISTEN_ADDR must be host:port with a fixed port, got %q", envPrefix, addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + healthzPath, nil
}

// probe GETs url and fails unless it answers 200.
func probe(ctx context.Context, w io.Writer, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s: %s", url, resp.Status, answer)
	}
	fmt.Fprintln(w, answer)
	return nil
}
