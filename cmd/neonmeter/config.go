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
	NeonAPIURL        string        `envconfig:"NEON_API_URL" default:"https://console.neon.tech/api/v2" desc:"Base URL of the Neon API v2"`
	NeonAPIKey        Secret        `envconfig:"NEON_API_KEY" desc:"Neon organization API key (required unless NEONMETER_NEON_API_KEY_FILE is set)"`
	NeonAPIKeyFile    string        `envconfig:"NEON_API_KEY_FILE" desc:"File holding the Neon API key; read when NEONMETER_NEON_API_KEY is empty"`
	NeonOrgID         string        `envconfig:"NEON_ORG_ID" desc:"Neon organization id whose projects are metered (required by collect)"`
	NeonConsumption   string        `envconfig:"NEON_CONSUMPTION_API" default:"v2" desc:"Consumption endpoint: v2 (current plans) or legacy (legacy-plan orgs)"`
	NeonConsumRate    float64       `envconfig:"NEON_CONSUMPTION_RATE" default:"30" desc:"Requests per minute allowed on the consumption routes (one shared bucket)"`
	NeonConsumBurst   int           `envconfig:"NEON_CONSUMPTION_BURST" default:"2" desc:"Burst of the consumption-route token bucket"`
	NeonGeneralRate   float64       `envconfig:"NEON_GENERAL_RATE" default:"600" desc:"Requests per minute allowed on all other Neon routes"`
	NeonGeneralBurst  int           `envconfig:"NEON_GENERAL_BURST" default:"10" desc:"Burst of the general token bucket"`
	NeonTimeout       time.Duration `envconfig:"NEON_TIMEOUT" default:"60s" desc:"Timeout of one Neon HTTP request"`
	NeonMaxRetries    int           `envconfig:"NEON_MAX_RETRIES" default:"8" desc:"Retries of one Neon request on 429, 423, 5xx or a bad body"`
	ClickHouseAddr    string        `envconfig:"CLICKHOUSE_ADDR" default:"127.0.0.1:9000" desc:"ClickHouse native-protocol address host:port"`
	ClickHouseDB      string        `envconfig:"CLICKHOUSE_DATABASE" default:"neonmeter" desc:"ClickHouse database holding neonmeter's tables"`
	ClickHouseUser    string        `envconfig:"CLICKHOUSE_USER" default:"default" desc:"ClickHouse user"`
	ClickHousePass    Secret        `envconfig:"CLICKHOUSE_PASSWORD" desc:"ClickHouse password"`
	ClickHousePassFle string        `envconfig:"CLICKHOUSE_PASSWORD_FILE" desc:"File holding the ClickHouse password; read when NEONMETER_CLICKHOUSE_PASSWORD is empty"`
	ClickHouseTLS     bool          `envconfig:"CLICKHOUSE_TLS" default:"false" desc:"Connect to ClickHouse over TLS"`
	CollectSchedule   string        `envconfig:"COLLECT_SCHEDULE" default:"20 * * * *" desc:"Cron schedule (5 fields, UTC) of collection sweeps in serve"`
	CollectLookback   time.Duration `envconfig:"COLLECT_LOOKBACK" default:"48h" desc:"How far before the watermark each sweep re-reads (clamped to Neon's 168h hourly window)"`
	ProvisionalWindow time.Duration `envconfig:"COLLECT_PROVISIONAL" default:"2h" desc:"Most recent hours whose values Neon may still revise; missing metrics there are not yet zero"`
	RetentionMonths   int           `envconfig:"RETENTION_MONTHS" default:"25" desc:"Months of usage kept; older monthly partitions are dropped"`
	ListenAddr        string        `envconfig:"LISTEN_ADDR" default:"127.0.0.1:9464" desc:"Address of serve's /metrics and /healthz"`
	LogLevel          string        `envconfig:"LOG_LEVEL" default:"info" desc:"Log level: debug, info, warn or error"`
	LogFormat         string        `envconfig:"LOG_FORMAT" default:"text" desc:"Log format: text or json"`
	PlansFile         string        `envconfig:"PLANS_FILE" default:"plans.yaml" desc:"Plan catalog (YAML): limits, Neon settings and Stripe billing per plan; plans/example.yaml in the source is a start"`
	DefaultPlan       string        `envconfig:"DEFAULT_PLAN" default:"free" desc:"Plan of projects nobody owns and of customers without a plan in force; must be in the catalog"`
	StripeAPIKey      Secret        `envconfig:"STRIPE_API_KEY" desc:"Stripe secret key (required by accounts sync unless NEONMETER_STRIPE_API_KEY_FILE is set)"`
	StripeAPIKeyFile  string        `envconfig:"STRIPE_API_KEY_FILE" desc:"File holding the Stripe secret key; read when NEONMETER_STRIPE_API_KEY is empty"`
	StripeAPIURL      string        `envconfig:"STRIPE_API_URL" default:"https://api.stripe.com" desc:"Base URL of the Stripe API (stripe-mock or a fake in tests)"`
	StripeTimeout     time.Duration `envconfig:"STRIPE_TIMEOUT" default:"30s" desc:"Timeout of one Stripe HTTP request"`
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
		read(&c.ClickHousePass, c.ClickHousePassFle, "CLICKHOUSE_PASSWORD_FILE"),
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
	if c.NeonConsumption != "v2" && c.NeonConsumption != "legacy" {
		bad("NEON_CONSUMPTION_API", "must be v2 or legacy, got %q", c.NeonConsumption)
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
