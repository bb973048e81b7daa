package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/robfig/cron/v3"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/redact"
	"github.com/neonmeter/neonmeter/internal/simclock"
	"github.com/neonmeter/neonmeter/schema"
)

// envPrefix is the prefix of every setting's environment variable.
const envPrefix = "NEONMETER"

// Secret holds a credential. It never prints its value: not through fmt, slog or JSON.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps encoders (JSON, slog's text and JSON handlers) from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the credential itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// Config is every setting of neonmeter, read from NEONMETER_* environment variables.
// Per-run options (time ranges, --dry-run) are flags of the subcommands instead.
type Config struct {
	NeonAPIURL         string        `envconfig:"NEON_API_URL" default:"https://console.neon.tech/api/v2" desc:"Base URL of the Neon API v2"`
	NeonAPIKey         Secret        `envconfig:"NEON_API_KEY" desc:"Neon organization API key (required unless NEONMETER_NEON_API_KEY_FILE is set)"`
	NeonAPIKeyFile     string        `envconfig:"NEON_API_KEY_FILE" desc:"File holding the Neon API key; read when NEONMETER_NEON_API_KEY is empty"`
	NeonOrgID          string        `envconfig:"NEON_ORG_ID" desc:"Neon organization id whose projects are metered (required by collect unless NEONMETER_NEON_ORG_IDS is set)"`
	NeonOrgIDs         orgList       `envconfig:"NEON_ORG_IDS" desc:"Comma-separated Neon organization ids metered together, each optionally :v2 or :legacy (its consumption route; default NEONMETER_NEON_CONSUMPTION_API), e.g. org-a,org-b:legacy; replaces NEONMETER_NEON_ORG_ID"`
	NeonOrgKeys        orgKeyFiles   `envconfig:"NEON_ORG_KEY_FILES" desc:"Orgs held by other Neon accounts, org-id=file,...: the file holds that account's API key; each distinct key is one account with its own consumption budget (NEONMETER_NEON_CONSUMPTION_RATE each); other orgs use NEONMETER_NEON_API_KEY"`
	NeonConsumption    string        `envconfig:"NEON_CONSUMPTION_API" default:"v2" desc:"Consumption endpoint: v2 (current plans) or legacy (legacy-plan orgs)"`
	NeonConsumRate     float64       `envconfig:"NEON_CONSUMPTION_RATE" default:"30" desc:"Requests per minute allowed on the consumption routes (one shared bucket)"`
	NeonConsumBurst    int           `envconfig:"NEON_CONSUMPTION_BURST" default:"2" desc:"Burst of the consumption-route token bucket"`
	NeonGeneralRate    float64       `envconfig:"NEON_GENERAL_RATE" default:"600" desc:"Requests per minute allowed on all other Neon routes"`
	NeonGeneralBurst   int           `envconfig:"NEON_GENERAL_BURST" default:"10" desc:"Burst of the general token bucket"`
	NeonTimeout        time.Duration `envconfig:"NEON_TIMEOUT" default:"60s" desc:"Timeout of one Neon HTTP request"`
	NeonMaxRetries     int           `envconfig:"NEON_MAX_RETRIES" default:"8" desc:"Retries of one Neon request on 429, 423, 5xx or a bad body"`
	ClickHouseAddr     string        `envconfig:"CLICKHOUSE_ADDR" default:"127.0.0.1:9000" desc:"ClickHouse native-protocol address host:port; on a cluster the replicas' addresses, comma-separated, tried in order (a replica that does not answer is passed over)"`
	ClickHouseDB       string        `envconfig:"CLICKHOUSE_DATABASE" default:"neonmeter" desc:"ClickHouse database holding neonmeter's tables"`
	ClickHouseUser     string        `envconfig:"CLICKHOUSE_USER" default:"default" desc:"ClickHouse user"`
	ClickHousePass     Secret        `envconfig:"CLICKHOUSE_PASSWORD" desc:"ClickHouse password"`
	ClickHousePassFile string        `envconfig:"CLICKHOUSE_PASSWORD_FILE" desc:"File holding the ClickHouse password; read when NEONMETER_CLICKHOUSE_PASSWORD is empty"`
	ClickHouseTLS      bool          `envconfig:"CLICKHOUSE_TLS" default:"false" desc:"Connect to ClickHouse over TLS"`
	ClickHouseCluster  string        `envconfig:"CLICKHOUSE_CLUSTER" desc:"ClickHouse cluster (a <remote_servers> name: one shard of replicas, or several shards) keeping the database: migrate creates replicated tables ON CLUSTER, and on several shards splits the usage tables by project and the ledger by customer behind Distributed tables (docs/operations.md); empty for one server"`
	CollectSchedule    string        `envconfig:"COLLECT_SCHEDULE" default:"20 * * * *" desc:"Cron schedule (5 fields, UTC) of collection sweeps in serve"`
	CollectLookback    time.Duration `envconfig:"COLLECT_LOOKBACK" default:"48h" desc:"How far before the watermark each sweep re-reads (clamped to Neon's 168h hourly window)"`
	ProvisionalWindow  time.Duration `envconfig:"COLLECT_PROVISIONAL" default:"2h" desc:"Most recent hours whose values Neon may still revise; missing metrics there are not yet zero"`
	CollectBounds      valueBounds   `envconfig:"COLLECT_VALUE_BOUNDS" desc:"Per-metric ceilings of one project-hour in raw units, metric:max,... (defaults in docs/collector.md); a page with a value above is refused"`
	CollectMinRatio    float64       `envconfig:"COLLECT_MIN_PROJECTS_RATIO" default:"0.5" desc:"A sweep seeing fewer projects than this share of the last successful one (or none) fails and leaves the watermark"`
	CollectDeadline    time.Duration `envconfig:"COLLECT_DEADLINE" default:"45m" desc:"Longest a sweep may run; must be shorter than the schedule's interval"`
	NeonMaxResponseMB  int           `envconfig:"NEON_MAX_RESPONSE_MB" default:"64" desc:"Largest Neon response body read, in MiB (a 100-project, 168-hour page is about 8)"`
	ShutdownTimeout    time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"After SIGTERM, how long the step in flight may take before it is stopped; keep the orchestrator's kill grace at least 20s longer (the manifests' terminationGracePeriodSeconds is 50)"`
	RetentionMonths    int           `envconfig:"RETENTION_MONTHS" default:"25" desc:"Months of usage kept; older monthly partitions are dropped"`
	ListenAddr         string        `envconfig:"LISTEN_ADDR" default:"127.0.0.1:9464" desc:"Address of serve's /metrics and /healthz"`
	LogLevel           string        `envconfig:"LOG_LEVEL" default:"info" desc:"Log level: debug, info, warn or error"`
	LogFormat          string        `envconfig:"LOG_FORMAT" default:"text" desc:"Log format: text or json"`
	PlansFile          string        `envconfig:"PLANS_FILE" default:"plans.yaml" desc:"Plan catalog (YAML): limits, Neon settings and Stripe billing per plan; plans/example.yaml in the source is a start"`
	DefaultPlan        string        `envconfig:"DEFAULT_PLAN" default:"free" desc:"Plan of projects nobody owns and of customers without a plan in force; must be in the catalog"`
	CostsFile          string        `envconfig:"COSTS_FILE" desc:"Cost table (YAML): Neon's unit price per metric and each plan's price per meter, for margin (report, plans simulate); finance/example-costs.yaml in the source is a start; empty: no margin"`
	StripeAPIKey       Secret        `envconfig:"STRIPE_API_KEY" desc:"Stripe secret key (required by accounts sync unless NEONMETER_STRIPE_API_KEY_FILE is set)"`
	StripeAPIKeyFile   string        `envconfig:"STRIPE_API_KEY_FILE" desc:"File holding the Stripe secret key; read when NEONMETER_STRIPE_API_KEY is empty"`
	AllowInsecureFiles bool          `envconfig:"ALLOW_INSECURE_KEY_FILES" default:"false" desc:"Accept *_FILE secrets readable by group or others (with a warning) instead of refusing them"`
	StripeAPIURL       string        `envconfig:"STRIPE_API_URL" default:"https://api.stripe.com" desc:"Base URL of the Stripe API (stripe-mock or a fake in tests)"`
	StripeTimeout      time.Duration `envconfig:"STRIPE_TIMEOUT" default:"30s" desc:"Timeout of one Stripe HTTP request"`
	BillingRate        float64       `envconfig:"BILLING_RATE" default:"500" desc:"Meter events per second billing sends to Stripe (one global pace; 429s back it off); Stripe allows 1,000/s per account in live mode"`
	BillingAPIRate     float64       `envconfig:"BILLING_API_RATE" default:"50" desc:"Other Stripe requests per second (usage records, summaries, subscription look-ups); Stripe's basic limit is 100/s live, 25/s in test mode"`
	BillingWorkers     int           `envconfig:"BILLING_CONCURRENCY" default:"64" desc:"Customers served at once by billing (one request at a time per customer and meter); the rate reached is at most this over Stripe's latency"`
	BillingLookback    time.Duration `envconfig:"BILLING_LOOKBACK" default:"72h" desc:"Hours each billing push compares with the ledger (running totals start at the period's start)"`
	BillingGrace       time.Duration `envconfig:"BILLING_GRACE" default:"1h" desc:"Stripe's invoice finalization grace after a period ends; later revisions become late adjustments"`
	BillingReconcile   string        `envconfig:"BILLING_RECONCILE_SCHEDULE" default:"30 2 * * *" desc:"Cron schedule (5 fields, UTC) of serve's month-to-date reconciliation with Stripe; serve also reconciles each period before its invoice grace ends"`
	EnforceMode        string        `envconfig:"ENFORCEMENT_MODE" default:"dry-run" desc:"Enforcement mode: dry-run (plan and audit only) or enforce (change Neon)"`
	EnforceNever       []string      `envconfig:"ENFORCEMENT_NEVER_SUSPEND" desc:"Comma-separated project ids never suspended nor throttled (alerts still fire)"`
	EnforceGrace       time.Duration `envconfig:"ENFORCEMENT_GRACE" default:"15m" desc:"How long a project stays over a limit before it is suspended or throttled"`
	EnforceHyster      int           `envconfig:"ENFORCEMENT_HYSTERESIS_PERCENT" default:"5" desc:"Points below a threshold usage must fall to leave a level"`
	EnforceStale       time.Duration `envconfig:"ENFORCEMENT_STALE_AFTER" default:"3h" desc:"Collector data older than this blocks suspension, throttling and restores on usage"`
	EnforceMaxActs     int           `envconfig:"ENFORCEMENT_MAX_ACTIONS" default:"100" desc:"Circuit breaker: most projects newly suspended or throttled per cycle"`
	EnforcePercent     float64       `envconfig:"ENFORCEMENT_MAX_PERCENT" default:"5" desc:"Circuit breaker: most percent of the fleet newly suspended or throttled per cycle"`
	EnforceMaxReads    int           `envconfig:"ENFORCEMENT_MAX_READS" default:"2000" desc:"Most projects given Neon calls of their own per cycle (computes read, a GET where no list shows them, in enforce mode their change), most urgent first; the project lists (400 a call) are not counted"`
	EnforceDrift       int           `envconfig:"ENFORCEMENT_DRIFT_READS" default:"100" desc:"Projects whose computes are re-read per cycle to find computes changed by hand (project settings are checked on every project from the lists)"`
	EnforceWakeIdle    bool          `envconfig:"ENFORCEMENT_THROTTLE_IDLE" default:"false" desc:"Also patch idle computes when throttling (wakes each one; counted)"`
	EnforceLatch       bool          `envconfig:"ENFORCEMENT_BREAKER_LATCH" default:"true" desc:"A tripped circuit breaker holds every new suspension and throttle until 'neonmeter enforce ack-breaker' (false: the cap is let through each cycle)"`
	SimClock           string        `envconfig:"SIM_CLOCK" desc:"Benchmarks and soak tests only: run on the simulator's accelerated clock (start=<RFC 3339>,anchor=<RFC 3339 real>,hour=<real duration of a simulated hour>, as given to neonsim --clock); Neon request rates are scaled with it. Empty: real time"`
	LeaseTTL           time.Duration `envconfig:"LEASE_TTL" default:"60s" desc:"How long a job's lease (billing, enforcement, accounts, retention: one writer each) outlives its holder's last renewal; a killed holder blocks the job this long"`
	LeaseBackend       string        `envconfig:"LEASE_BACKEND" default:"clickhouse" desc:"Where the jobs' leases live: clickhouse (tables of the database, one server only) or zookeeper (NEONMETER_ZOOKEEPER_ADDRS; required with NEONMETER_CLICKHOUSE_CLUSTER)"`
	ZooKeeperAddrs     string        `envconfig:"ZOOKEEPER_ADDRS" desc:"ZooKeeper or ClickHouse Keeper ensemble keeping the leases when NEONMETER_LEASE_BACKEND=zookeeper: host:port,..."`
	ZooKeeperRoot      string        `envconfig:"ZOOKEEPER_ROOT" default:"/neonmeter" desc:"Znode under which the leases live, as <root>/<database>/leases/<job>"`
	ZooKeeperSession   time.Duration `envconfig:"ZOOKEEPER_SESSION_TIMEOUT" default:"10s" desc:"ZooKeeper session timeout asked of the ensemble (a request to a dead server fails after two thirds of it); at most half NEONMETER_LEASE_TTL"`
}

// LoadConfig reads the environment, resolves every *_FILE secret and validates every field.
func LoadConfig() (Config, error) {
	c, _, err := loadConfig(allSecrets)
	return c, err
}

// secretUse names the secrets a command uses: only their *_FILE files are read, so a command
// is not refused for a file it never needs (migrate and a missing Neon key file).
type secretUse uint8

const (
	useNeonKey secretUse = 1 << iota
	useStripeKey
	useClickHousePass
	allSecrets = useNeonKey | useStripeKey | useClickHousePass
)

// loadConfig reads the environment, resolves the secrets in use and validates every field,
// reporting every problem at once. warnings are for the caller to log (an insecure key file
// accepted by NEONMETER_ALLOW_INSECURE_KEY_FILES).
func loadConfig(use secretUse) (c Config, warnings []string, err error) {
	if err := processEnv(&c); err != nil {
		return c, nil, fmt.Errorf("config: %w", err)
	}
	warnings, ferr := c.resolveSecretFiles(use)
	return c, warnings, errors.Join(ferr, c.Validate())
}

// processEnv fills c from NEONMETER_* variables only. envconfig falls back to the bare tag name
// (NEON_API_URL) when the prefixed variable is unset, which would let an unrelated variable
// send the Neon key elsewhere or switch enforcement on; so envconfig is given a copy of
// Config's type whose tags hold the full prefixed names, and no prefix to fall back from.
func processEnv(c *Config) error {
	t := reflect.TypeOf(*c)
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" || !f.IsExported() {
			return fmt.Errorf("setting %s needs an exported field and an envconfig tag", f.Name)
		}
		f.Tag = reflect.StructTag(strings.Replace(string(f.Tag),
			`envconfig:"`+name+`"`, `envconfig:"`+envPrefix+"_"+name+`"`, 1))
		fields[i] = f
	}
	v := reflect.New(reflect.StructOf(fields))
	if err := envconfig.Process("", v.Interface()); err != nil {
		return err
	}
	reflect.ValueOf(c).Elem().Set(v.Elem().Convert(t))
	return nil
}

// resolveSecretFiles reads the *_FILE of every secret in use whose variable is empty.
func (c *Config) resolveSecretFiles(use secretUse) (warnings []string, err error) {
	files := []struct {
		use  secretUse
		dst  *Secret
		file string
		env  string
	}{
		{useNeonKey, &c.NeonAPIKey, c.NeonAPIKeyFile, "NEON_API_KEY_FILE"},
		{useClickHousePass, &c.ClickHousePass, c.ClickHousePassFile, "CLICKHOUSE_PASSWORD_FILE"},
		{useStripeKey, &c.StripeAPIKey, c.StripeAPIKeyFile, "STRIPE_API_KEY_FILE"},
	}
	var errs []error
	for _, f := range files {
		if use&f.use == 0 || *f.dst != "" || f.file == "" {
			continue
		}
		v, warning, err := readSecretFile(envPrefix+"_"+f.env, f.file, c.AllowInsecureFiles)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		errs = append(errs, err)
		*f.dst = v
	}
	if use&useNeonKey != 0 {
		w, ferrs := c.NeonOrgKeys.resolve(func(env, path string) (Secret, string, error) {
			return readSecretFile(env, path, c.AllowInsecureFiles)
		})
		warnings, errs = append(warnings, w...), append(errs, ferrs...)
	}
	return warnings, errors.Join(errs...)
}

// readSecretFile reads one secret file named by the variable env. A file that users other than
// this process's may read is refused unless allowInsecure (then a warning); a byte-order mark
// and surrounding whitespace (an editor's trailing newline) are dropped; an empty file is an
// error naming it.
func readSecretFile(env, path string, allowInsecure bool) (Secret, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", env, err)
	}
	warning := ""
	gid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		gid = int(st.Gid)
	}
	groups, _ := os.Getgroups()
	if who := keyFileReaders(fi.Mode().Perm(), gid, append(groups, os.Getegid())); who != "" {
		msg := fmt.Sprintf("%s: %s is readable by %s (mode %04o); chmod 600 it (or 640 with a group of this process only)",
			env, path, who, fi.Mode().Perm())
		if !allowInsecure {
			return "", "", fmt.Errorf("%s, or set %s_ALLOW_INSECURE_KEY_FILES=true to accept it", msg, envPrefix)
		}
		warning = msg
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", warning, fmt.Errorf("%s: %w", env, err)
	}
	v := strings.TrimSpace(strings.TrimPrefix(string(b), "\uFEFF"))
	switch {
	case v == "":
		return "", warning, fmt.Errorf("%s: %s is empty", env, path)
	case strings.ContainsAny(v, "\r\n"):
		return "", warning, fmt.Errorf("%s: %s holds more than one line; it must hold the secret alone", env, path)
	}
	return Secret(v), warning, nil
}

// keyFileReaders names who, besides this process's user and groups, may read a file of mode
// perm whose group is gid; "" when nobody. A group of the process itself is accepted: that is
// how Kubernetes hands secrets to a non-root container (fsGroup, mode 0440).
func keyFileReaders(perm os.FileMode, gid int, ownGroups []int) string {
	switch {
	case perm&0o004 != 0:
		return "others"
	case perm&0o040 != 0 && !slices.Contains(ownGroups, gid):
		return fmt.Sprintf("group %d", gid)
	}
	return ""
}

// redactor removes every configured secret from text: the one redaction layer of log
// handlers, stored error rows and the Stripe transport.
func (c Config) redactor() *redact.Redactor {
	return redact.New(append(c.NeonOrgKeys.secrets(), c.NeonAPIKey.Reveal(), c.StripeAPIKey.Reveal(), c.ClickHousePass.Reveal())...)
}

// Validate reports every bad field at once, each naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: %s", envPrefix, env, fmt.Sprintf(format, a...)))
	}
	c.validateNumbers(bad)
	if !validURL(c.NeonAPIURL) {
		bad("NEON_API_URL", "must be an absolute http(s) URL, got %q", c.NeonAPIURL)
	}
	c.validateOrgs(bad)
	if c.SimClock != "" {
		if _, err := simclock.Parse(c.SimClock); err != nil {
			bad("SIM_CLOCK", "%v", err)
		}
	}
	if !collector.Endpoint(c.NeonConsumption).Valid() {
		bad("NEON_CONSUMPTION_API", "must be %s or %s, got %q", collector.EndpointV2, collector.EndpointLegacy, c.NeonConsumption)
	}
	if addrs, err := schema.SplitAddrs(c.ClickHouseAddr); err != nil {
		bad("CLICKHOUSE_ADDR", "%v", err)
	} else if len(addrs) > 1 && c.ClickHouseCluster == "" {
		bad("CLICKHOUSE_ADDR", "%d addresses are the replicas of a cluster: set NEONMETER_CLICKHOUSE_CLUSTER too", len(addrs))
	}
	if c.ClickHouseCluster != "" && !schema.ValidCluster(c.ClickHouseCluster) {
		bad("CLICKHOUSE_CLUSTER", "must be letters, digits and underscores, got %q", c.ClickHouseCluster)
	}
	if !validIdent(c.ClickHouseDB) {
		bad("CLICKHOUSE_DATABASE", "must be letters, digits and underscores, got %q", c.ClickHouseDB)
	}
	if sched, err := cron.ParseStandard(c.CollectSchedule); err != nil {
		bad("COLLECT_SCHEDULE", "must be a cron schedule of 5 fields (UTC), got %q: %v", c.CollectSchedule, err)
	} else if gap := shortestInterval(sched, time.Now()); c.CollectDeadline >= gap {
		bad("COLLECT_DEADLINE", "%v must be shorter than NEONMETER_COLLECT_SCHEDULE's shortest interval %v, or a stuck sweep holds the next one back", c.CollectDeadline, gap)
	}
	if _, err := collector.WithOverrides(c.CollectBounds); err != nil {
		bad("COLLECT_VALUE_BOUNDS", "%v", err)
	}
	if _, err := cron.ParseStandard(c.BillingReconcile); err != nil {
		bad("BILLING_RECONCILE_SCHEDULE", "must be a cron schedule of 5 fields (UTC), got %q: %v", c.BillingReconcile, err)
	}
	// An empty address or port 0 would serve /metrics on a random port nobody scrapes.
	if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil || port == "" || port == "0" {
		bad("LISTEN_ADDR", "must be host:port with a fixed port (0.0.0.0:9464 for every interface), got %q", c.ListenAddr)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	if c.PlansFile == "" {
		bad("PLANS_FILE", "must name the plan catalog file")
	}
	if c.DefaultPlan == "" {
		bad("DEFAULT_PLAN", "must name a plan of the catalog")
	}
	if !validURL(c.StripeAPIURL) {
		bad("STRIPE_API_URL", "must be an absolute http(s) URL, got %q", c.StripeAPIURL)
	}
	if c.EnforceMode != "dry-run" && c.EnforceMode != "enforce" {
		bad("ENFORCEMENT_MODE", "must be dry-run or enforce, got %q", c.EnforceMode)
	}
	c.validateLeases(bad)
	return errors.Join(errs...)
}

// validateNumbers refuses NaN, infinities and values outside each numeric setting's meaningful
// range. Rates have a floor: x/time/rate turns the pacing interval of a tiny rate into an
// overflowed duration, that is no wait at all.
func (c Config) validateNumbers(bad func(env, format string, a ...any)) {
	float := func(env string, v, lo, hi float64, unit string) {
		if !(v >= lo && v <= hi) { // also false for NaN
			bad(env, "must be from %g to %g %s, got %v", lo, hi, unit, v)
		}
	}
	integer := func(env string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(env, "must be from %d to %d, got %d", lo, hi, v)
		}
	}
	duration := func(env string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			bad(env, "must be from %v to %v, got %v", lo, hi, v)
		}
	}
	const day = 24 * time.Hour
	float("NEON_CONSUMPTION_RATE", c.NeonConsumRate, 1, 100_000, "requests per minute")
	float("NEON_GENERAL_RATE", c.NeonGeneralRate, 1, 100_000, "requests per minute")
	integer("NEON_CONSUMPTION_BURST", c.NeonConsumBurst, 1, 100)
	integer("NEON_GENERAL_BURST", c.NeonGeneralBurst, 1, 1000)
	duration("NEON_TIMEOUT", c.NeonTimeout, time.Second, time.Hour)
	integer("NEON_MAX_RETRIES", c.NeonMaxRetries, 0, 100)
	duration("COLLECT_LOOKBACK", c.CollectLookback, time.Hour, 366*day)
	duration("COLLECT_PROVISIONAL", c.ProvisionalWindow, 0, day)
	float("COLLECT_MIN_PROJECTS_RATIO", c.CollectMinRatio, 0.01, 1, "(a share of the last sweep's projects)")
	duration("COLLECT_DEADLINE", c.CollectDeadline, 10*time.Second, day)
	integer("NEON_MAX_RESPONSE_MB", c.NeonMaxResponseMB, 1, 1024)
	duration("SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Second, 10*time.Minute)
	integer("RETENTION_MONTHS", c.RetentionMonths, 1, 1200)
	duration("STRIPE_TIMEOUT", c.StripeTimeout, time.Second, 10*time.Minute)
	float("BILLING_RATE", c.BillingRate, 0.1, 1000, "requests per second")
	float("BILLING_API_RATE", c.BillingAPIRate, 0.1, 100, "requests per second")
	integer("BILLING_CONCURRENCY", c.BillingWorkers, 1, 1024)
	duration("BILLING_LOOKBACK", c.BillingLookback, time.Hour, 366*day)
	duration("BILLING_GRACE", c.BillingGrace, time.Hour, 72*time.Hour) // Stripe's range
	duration("ENFORCEMENT_GRACE", c.EnforceGrace, 0, 31*day)
	duration("ENFORCEMENT_STALE_AFTER", c.EnforceStale, time.Minute, 31*day)
	integer("ENFORCEMENT_HYSTERESIS_PERCENT", c.EnforceHyster, 0, 79)
	integer("ENFORCEMENT_MAX_ACTIONS", c.EnforceMaxActs, 0, 1_000_000)
	float("ENFORCEMENT_MAX_PERCENT", c.EnforcePercent, 0, 100, "percent")
	integer("ENFORCEMENT_MAX_READS", c.EnforceMaxReads, 1, 1_000_000)
	integer("ENFORCEMENT_DRIFT_READS", c.EnforceDrift, 0, 1_000_000)
	duration("LEASE_TTL", c.LeaseTTL, 5*time.Second, lease.MaxTTL)
}

// validURL reports whether s is an absolute http(s) URL with a host.
func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// RequireNeon checks the settings every command that calls Neon needs.
func (c Config) RequireNeon(needOrg bool) error {
	errs := []error{c.requireNeonKeys()}
	if needOrg && len(c.orgs()) == 0 {
		errs = append(errs, fmt.Errorf("%s_NEON_ORG_ID (or %s_NEON_ORG_IDS) is required", envPrefix, envPrefix))
	}
	return errors.Join(errs...)
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// printConfig writes one row per setting: env name, current value (secrets redacted),
// default and description.
func printConfig(w io.Writer, c Config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tDEFAULT\tDESCRIPTION")
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		if val == "" {
			val = "-"
		}
		def := f.Tag.Get("default")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s_%s\t%s\t%s\t%s\n", envPrefix, f.Tag.Get("envconfig"), val, def, f.Tag.Get("desc"))
	}
	return tw.Flush()
}
