package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/neonmeter/neonmeter/collector"
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
	NeonOrgID          string        `envconfig:"NEON_ORG_ID" desc:"Neon organization id whose projects are metered (required by collect)"`
	NeonConsumption    string        `envconfig:"NEON_CONSUMPTION_API" default:"v2" desc:"Consumption endpoint: v2 (current plans) or legacy (legacy-plan orgs)"`
	NeonConsumRate     float64       `envconfig:"NEON_CONSUMPTION_RATE" default:"30" desc:"Requests per minute allowed on the consumption routes (one shared bucket)"`
	NeonConsumBurst    int           `envconfig:"NEON_CONSUMPTION_BURST" default:"2" desc:"Burst of the consumption-route token bucket"`
	NeonGeneralRate    float64       `envconfig:"NEON_GENERAL_RATE" default:"600" desc:"Requests per minute allowed on all other Neon routes"`
	NeonGeneralBurst   int           `envconfig:"NEON_GENERAL_BURST" default:"10" desc:"Burst of the general token bucket"`
	NeonTimeout        time.Duration `envconfig:"NEON_TIMEOUT" default:"60s" desc:"Timeout of one Neon HTTP request"`
	NeonMaxRetries     int           `envconfig:"NEON_MAX_RETRIES" default:"8" desc:"Retries of one Neon request on 429, 423, 5xx or a bad body"`
	ClickHouseAddr     string        `envconfig:"CLICKHOUSE_ADDR" default:"127.0.0.1:9000" desc:"ClickHouse native-protocol address host:port"`
	ClickHouseDB       string        `envconfig:"CLICKHOUSE_DATABASE" default:"neonmeter" desc:"ClickHouse database holding neonmeter's tables"`
	ClickHouseUser     string        `envconfig:"CLICKHOUSE_USER" default:"default" desc:"ClickHouse user"`
	ClickHousePass     Secret        `envconfig:"CLICKHOUSE_PASSWORD" desc:"ClickHouse password"`
	ClickHousePassFile string        `envconfig:"CLICKHOUSE_PASSWORD_FILE" desc:"File holding the ClickHouse password; read when NEONMETER_CLICKHOUSE_PASSWORD is empty"`
	ClickHouseTLS      bool          `envconfig:"CLICKHOUSE_TLS" default:"false" desc:"Connect to ClickHouse over TLS"`
	CollectSchedule    string        `envconfig:"COLLECT_SCHEDULE" default:"20 * * * *" desc:"Cron schedule (5 fields, UTC) of collection sweeps in serve"`
	CollectLookback    time.Duration `envconfig:"COLLECT_LOOKBACK" default:"48h" desc:"How far before the watermark each sweep re-reads (clamped to Neon's 168h hourly window)"`
	ProvisionalWindow  time.Duration `envconfig:"COLLECT_PROVISIONAL" default:"2h" desc:"Most recent hours whose values Neon may still revise; missing metrics there are not yet zero"`
	RetentionMonths    int           `envconfig:"RETENTION_MONTHS" default:"25" desc:"Months of usage kept; older monthly partitions are dropped"`
	ListenAddr         string        `envconfig:"LISTEN_ADDR" default:"127.0.0.1:9464" desc:"Address of serve's /metrics and /healthz"`
	LogLevel           string        `envconfig:"LOG_LEVEL" default:"info" desc:"Log level: debug, info, warn or error"`
	LogFormat          string        `envconfig:"LOG_FORMAT" default:"text" desc:"Log format: text or json"`
	PlansFile          string        `envconfig:"PLANS_FILE" default:"plans.yaml" desc:"Plan catalog (YAML): limits, Neon settings and Stripe billing per plan; plans/example.yaml in the source is a start"`
	DefaultPlan        string        `envconfig:"DEFAULT_PLAN" default:"free" desc:"Plan of projects nobody owns and of customers without a plan in force; must be in the catalog"`
	StripeAPIKey       Secret        `envconfig:"STRIPE_API_KEY" desc:"Stripe secret key (required by accounts sync unless NEONMETER_STRIPE_API_KEY_FILE is set)"`
	StripeAPIKeyFile   string        `envconfig:"STRIPE_API_KEY_FILE" desc:"File holding the Stripe secret key; read when NEONMETER_STRIPE_API_KEY is empty"`
	StripeAPIURL       string        `envconfig:"STRIPE_API_URL" default:"https://api.stripe.com" desc:"Base URL of the Stripe API (stripe-mock or a fake in tests)"`
	StripeTimeout      time.Duration `envconfig:"STRIPE_TIMEOUT" default:"30s" desc:"Timeout of one Stripe HTTP request"`
	BillingRate        float64       `envconfig:"BILLING_RATE" default:"50" desc:"Requests per second billing sends to Stripe (one global pace; 429s back it off)"`
	BillingWorkers     int           `envconfig:"BILLING_CONCURRENCY" default:"16" desc:"Customers served at once by billing (one request at a time per customer and meter)"`
	BillingLookback    time.Duration `envconfig:"BILLING_LOOKBACK" default:"72h" desc:"Hours each billing push compares with the ledger (running totals start at the period's start)"`
	BillingGrace       time.Duration `envconfig:"BILLING_GRACE" default:"1h" desc:"Stripe's invoice finalization grace after a period ends; later revisions become late adjustments"`
	EnforceMode        string        `envconfig:"ENFORCEMENT_MODE" default:"dry-run" desc:"Enforcement mode: dry-run (plan and audit only) or enforce (change Neon)"`
	EnforceNever       []string      `envconfig:"ENFORCEMENT_NEVER_SUSPEND" desc:"Comma-separated project ids never suspended nor throttled (alerts still fire)"`
	EnforceGrace       time.Duration `envconfig:"ENFORCEMENT_GRACE" default:"15m" desc:"How long a project stays over a limit before it is suspended or throttled"`
	EnforceHyster      int           `envconfig:"ENFORCEMENT_HYSTERESIS_PERCENT" default:"5" desc:"Points below a threshold usage must fall to leave a level"`
	EnforceStale       time.Duration `envconfig:"ENFORCEMENT_STALE_AFTER" default:"3h" desc:"Collector data older than this blocks suspension, throttling and restores on usage"`
	EnforceMaxActs     int           `envconfig:"ENFORCEMENT_MAX_ACTIONS" default:"100" desc:"Circuit breaker: most projects newly suspended or throttled per cycle"`
	EnforcePercent     float64       `envconfig:"ENFORCEMENT_MAX_PERCENT" default:"5" desc:"Circuit breaker: most percent of the fleet newly suspended or throttled per cycle"`
	EnforceMaxReads    int           `envconfig:"ENFORCEMENT_MAX_READS" default:"2000" desc:"Most projects read from Neon per cycle (GET project and endpoints)"`
	EnforceDrift       int           `envconfig:"ENFORCEMENT_DRIFT_READS" default:"100" desc:"Projects without a pending change re-read per cycle to correct hand-made drift"`
	EnforceWakeIdle    bool          `envconfig:"ENFORCEMENT_THROTTLE_IDLE" default:"false" desc:"Also patch idle computes when throttling (wakes each one; counted)"`
}

// LoadConfig reads the environment, resolves *_FILE secrets and validates every field.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := c.resolveSecretFiles(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func (c *Config) resolveSecretFiles() error {
	read := func(dst *Secret, file, env string) error {
		if *dst != "" || file == "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config: %s_%s: %w", envPrefix, env, err)
		}
		*dst = Secret(strings.TrimSpace(string(b)))
		return nil
	}
	return errors.Join(
		read(&c.NeonAPIKey, c.NeonAPIKeyFile, "NEON_API_KEY_FILE"),
		read(&c.ClickHousePass, c.ClickHousePassFile, "CLICKHOUSE_PASSWORD_FILE"),
		read(&c.StripeAPIKey, c.StripeAPIKeyFile, "STRIPE_API_KEY_FILE"),
	)
}

// Validate reports every bad field at once, each naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: %s", envPrefix, env, fmt.Sprintf(format, a...)))
	}
	if !strings.HasPrefix(c.NeonAPIURL, "http://") && !strings.HasPrefix(c.NeonAPIURL, "https://") {
		bad("NEON_API_URL", "must be an http(s) URL, got %q", c.NeonAPIURL)
	}
	if !collector.Endpoint(c.NeonConsumption).Valid() {
		bad("NEON_CONSUMPTION_API", "must be %s or %s, got %q", collector.EndpointV2, collector.EndpointLegacy, c.NeonConsumption)
	}
	if c.NeonConsumRate <= 0 {
		bad("NEON_CONSUMPTION_RATE", "must be positive, got %v", c.NeonConsumRate)
	}
	if c.NeonGeneralRate <= 0 {
		bad("NEON_GENERAL_RATE", "must be positive, got %v", c.NeonGeneralRate)
	}
	if c.NeonConsumBurst < 1 {
		bad("NEON_CONSUMPTION_BURST", "must be at least 1, got %d", c.NeonConsumBurst)
	}
	if c.NeonGeneralBurst < 1 {
		bad("NEON_GENERAL_BURST", "must be at least 1, got %d", c.NeonGeneralBurst)
	}
	if c.NeonTimeout <= 0 {
		bad("NEON_TIMEOUT", "must be positive, got %v", c.NeonTimeout)
	}
	if c.NeonMaxRetries < 0 {
		bad("NEON_MAX_RETRIES", "must not be negative, got %d", c.NeonMaxRetries)
	}
	if c.ClickHouseAddr == "" || !strings.Contains(c.ClickHouseAddr, ":") {
		bad("CLICKHOUSE_ADDR", "must be host:port, got %q", c.ClickHouseAddr)
	}
	if !validIdent(c.ClickHouseDB) {
		bad("CLICKHOUSE_DATABASE", "must be letters, digits and underscores, got %q", c.ClickHouseDB)
	}
	if c.CollectLookback <= 0 {
		bad("COLLECT_LOOKBACK", "must be positive, got %v", c.CollectLookback)
	}
	if c.ProvisionalWindow < 0 || c.ProvisionalWindow > 24*time.Hour {
		bad("COLLECT_PROVISIONAL", "must be between 0 and 24h, got %v", c.ProvisionalWindow)
	}
	if c.RetentionMonths < 1 {
		bad("RETENTION_MONTHS", "must be at least 1, got %d", c.RetentionMonths)
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
	if !strings.HasPrefix(c.StripeAPIURL, "http://") && !strings.HasPrefix(c.StripeAPIURL, "https://") {
		bad("STRIPE_API_URL", "must be an http(s) URL, got %q", c.StripeAPIURL)
	}
	if c.StripeTimeout <= 0 {
		bad("STRIPE_TIMEOUT", "must be positive, got %v", c.StripeTimeout)
	}
	if c.BillingRate <= 0 {
		bad("BILLING_RATE", "must be positive, got %v", c.BillingRate)
	}
	if c.BillingWorkers < 1 {
		bad("BILLING_CONCURRENCY", "must be at least 1, got %d", c.BillingWorkers)
	}
	if c.BillingLookback <= 0 {
		bad("BILLING_LOOKBACK", "must be positive, got %v", c.BillingLookback)
	}
	if c.BillingGrace < time.Hour || c.BillingGrace > 72*time.Hour {
		bad("BILLING_GRACE", "must be between 1h and 72h (Stripe's range), got %v", c.BillingGrace)
	}
	if c.EnforceMode != "dry-run" && c.EnforceMode != "enforce" {
		bad("ENFORCEMENT_MODE", "must be dry-run or enforce, got %q", c.EnforceMode)
	}
	if c.EnforceGrace < 0 || c.EnforceStale <= 0 {
		bad("ENFORCEMENT_GRACE", "grace must not be negative and ENFORCEMENT_STALE_AFTER must be positive")
	}
	if c.EnforceHyster < 0 || c.EnforceHyster >= 80 {
		bad("ENFORCEMENT_HYSTERESIS_PERCENT", "must be 0–79, got %d", c.EnforceHyster)
	}
	if c.EnforceMaxActs < 0 || c.EnforcePercent < 0 || c.EnforcePercent > 100 {
		bad("ENFORCEMENT_MAX_ACTIONS", "must not be negative, and ENFORCEMENT_MAX_PERCENT must be 0–100")
	}
	if c.EnforceMaxReads < 1 || c.EnforceDrift < 0 {
		bad("ENFORCEMENT_MAX_READS", "must be at least 1, and ENFORCEMENT_DRIFT_READS not negative")
	}
	return errors.Join(errs...)
}

// RequireNeon checks the settings every command that calls Neon needs.
func (c Config) RequireNeon(needOrg bool) error {
	var errs []error
	if c.NeonAPIKey == "" {
		errs = append(errs, fmt.Errorf("%s_NEON_API_KEY (or %s_NEON_API_KEY_FILE) is required", envPrefix, envPrefix))
	}
	if needOrg && c.NeonOrgID == "" {
		errs = append(errs, fmt.Errorf("%s_NEON_ORG_ID is required", envPrefix))
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
