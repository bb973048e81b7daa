package main

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/neonmeter/neonmeter/neon"
)

// configFromEnv builds a Config from an injected environment, as processEnv does from the
// process's (envconfig's rules: a variable set, even empty, is decoded; an unset one takes its
// default). The fuzz targets use it instead of the process environment, which they must not
// change; TestConfigFromEnv_MatchesProcessEnv keeps the two equal.
func configFromEnv(env map[string]string) (Config, error) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := envPrefix + "_" + f.Tag.Get("envconfig")
		value, ok := env[name]
		if def := f.Tag.Get("default"); !ok && def != "" {
			value, ok = def, true
		}
		if !ok {
			continue
		}
		if err := decodeSetting(value, v.Field(i)); err != nil {
			return c, fmt.Errorf("assigning %s: %w", name, err)
		}
	}
	return c, nil
}

// decodeSetting decodes one value into a field of Config's kinds, as envconfig does.
func decodeSetting(value string, field reflect.Value) error {
	if d, ok := field.Addr().Interface().(envconfig.Decoder); ok {
		return d.Decode(value)
	}
	var err error
	switch field.Kind() {
	case reflect.String:
		field.SetString(value)
	case reflect.Bool:
		var b bool
		b, err = strconv.ParseBool(value)
		field.SetBool(b)
	case reflect.Int, reflect.Int64:
		var n int64
		if field.Type() == reflect.TypeOf(time.Duration(0)) {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, field.Type().Bits())
		}
		field.SetInt(n)
	case reflect.Float64:
		var x float64
		x, err = strconv.ParseFloat(value, 64)
		field.SetFloat(x)
	case reflect.Slice:
		items := []string{}
		if strings.TrimSpace(value) != "" {
			items = strings.Split(value, ",")
		}
		field.Set(reflect.ValueOf(items).Convert(field.Type()))
	case reflect.Map:
		m := reflect.MakeMap(field.Type())
		for _, pair := range strings.Split(value, ",") {
			if strings.TrimSpace(value) == "" {
				break
			}
			kv := strings.Split(pair, ":")
			if len(kv) != 2 {
				return fmt.Errorf("invalid map item: %q", pair)
			}
			n, err := strconv.ParseUint(kv[1], 0, 64)
			if err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(kv[0]), reflect.ValueOf(n))
		}
		field.Set(m)
	default:
		return fmt.Errorf("no decoder for kind %s", field.Kind())
	}
	return err
}

// fuzzBaseEnv is a valid environment using the settings with the most rules: several orgs, one
// held by a key file, a simulated clock, value bounds.
func fuzzBaseEnv() map[string]string {
	return map[string]string{
		"NEONMETER_NEON_API_KEY":              "napi-fuzz-base-key",
		"NEONMETER_NEON_ORG_IDS":              "org-a,org-b:legacy,org-c:v2",
		"NEONMETER_NEON_ORG_KEY_FILES":        "org-b=/run/secrets/neon-b",
		"NEONMETER_SIM_CLOCK":                 "start=2026-11-01T00:00:00Z,anchor=2026-12-03T15:00:00Z,hour=5s",
		"NEONMETER_COLLECT_VALUE_BOUNDS":      "compute_unit_seconds:7200000",
		"NEONMETER_STRIPE_API_KEY":            "sk_test_fuzz_base",
		"NEONMETER_ENFORCEMENT_NEVER_SUSPEND": "p-1,p-2",
	}
}

// settingNames lists every variable of Config, in field order.
func settingNames() []string {
	t := reflect.TypeOf(Config{})
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = envPrefix + "_" + t.Field(i).Tag.Get("envconfig")
	}
	return out
}

// FuzzConfig sets one variable of a valid environment to any value. A refused configuration
// names that variable; an accepted one holds to what the stages rely on.
func FuzzConfig(f *testing.F) {
	names := settingNames()
	index := func(name string) uint8 {
		for i, n := range names {
			if n == name {
				return uint8(i)
			}
		}
		f.Fatalf("no setting %s", name)
		return 0
	}
	for _, s := range [][2]string{
		{"NEONMETER_NEON_ORG_IDS", "org-a,org-a"},
		{"NEONMETER_NEON_ORG_IDS", "org-a:v3, org-b"},
		{"NEONMETER_NEON_ORG_IDS", " , org-b:legacy,,"},
		{"NEONMETER_NEON_ORG_ID", "org-z"},
		{"NEONMETER_NEON_ORG_KEY_FILES", "org-c=/k,org-c=/j"},
		{"NEONMETER_NEON_ORG_KEY_FILES", "org-x=/k"},
		{"NEONMETER_NEON_ORG_KEY_FILES", "=/k"},
		{"NEONMETER_SIM_CLOCK", "start=2026-11-01T00:00:00Z,hour=1ms"},
		{"NEONMETER_SIM_CLOCK", "start=x,start=y,anchor=2026-12-03T15:00:00.5+01:00,hour=1h,speed=2"},
		{"NEONMETER_NEON_CONSUMPTION_RATE", "NaN"},
		{"NEONMETER_BILLING_RATE", "1e-300"},
		{"NEONMETER_COLLECT_SCHEDULE", "*/5 * * * *"},
		{"NEONMETER_COLLECT_SCHEDULE", "@every 1s"},
		{"NEONMETER_CLICKHOUSE_ADDR", "a:1,b:2"},
		{"NEONMETER_CLICKHOUSE_CLUSTER", "c1"},
		{"NEONMETER_LEASE_BACKEND", "zookeeper"},
		{"NEONMETER_LISTEN_ADDR", ":0"},
		{"NEONMETER_COLLECT_VALUE_BOUNDS", "compute_unit_seconds:0"},
		{"NEONMETER_NEON_API_URL", "ftp://x"},
		{"NEONMETER_STRIPE_API_KEY", "sk_live_0123456789abcdef"},
	} {
		f.Add(index(s[0]), s[1])
	}
	base := fuzzBaseEnv()
	bc, err := configFromEnv(base)
	if err != nil {
		f.Fatal(err)
	}
	if err := bc.Validate(); err != nil {
		f.Fatalf("the base environment is invalid: %v", err)
	}
	var baseOut bytes.Buffer
	if err := printConfig(&baseOut, bc); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		if len(value) > 4096 {
			return
		}
		name := names[int(which)%len(names)]
		env := fuzzBaseEnv()
		env[name] = value
		c, err := configFromEnv(env)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("decode error %q does not name %s", err, name)
			}
			return
		}
		if err := c.Validate(); err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%q: error %q does not name the variable", name, value, err)
			}
			return
		}
		checkConfig(t, c)
		var out bytes.Buffer
		if err := printConfig(&out, c); err != nil {
			t.Fatal(err)
		}
		for _, s := range []Secret{c.NeonAPIKey, c.StripeAPIKey, c.ClickHousePass} {
			if len(s) >= 8 && !strings.Contains(baseOut.String(), s.Reveal()) && strings.Contains(out.String(), s.Reveal()) {
				t.Fatalf("printConfig shows a secret of %s", name)
			}
		}
	})
}

// checkConfig holds an accepted configuration to what the stages rely on.
func checkConfig(t *testing.T, c Config) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range c.orgs() {
		if !neon.ValidID(o.ID) || seen[o.ID] || !o.Endpoint.Valid() {
			t.Fatalf("accepted org %+v (orgs %v)", o, c.orgs())
		}
		seen[o.ID] = true
	}
	n := 0
	for _, a := range c.neonAccounts() {
		for _, o := range a.Orgs {
			if !seen[o.ID] {
				t.Fatalf("account %s meters org %s, which is not configured", a.Name, o.ID)
			}
			n++
		}
	}
	if n != len(seen) {
		t.Fatalf("%d orgs configured, %d metered by the accounts", len(seen), n)
	}
	for _, x := range []float64{c.NeonConsumRate, c.NeonGeneralRate, c.BillingRate, c.BillingAPIRate} {
		if !(x > 0) || math.IsInf(x, 0) {
			t.Fatalf("accepted rate %v", x)
		}
	}
	if _, speed := c.clock(); !(speed > 0) || math.IsInf(speed, 0) {
		t.Fatalf("SIM_CLOCK %q gives speed %v", c.SimClock, speed)
	}
	var k orgKeyFiles
	if err := k.Decode(c.NeonOrgKeys.String()); err != nil || k.String() != c.NeonOrgKeys.String() {
		t.Fatalf("NEON_ORG_KEY_FILES %q does not read back: %q, %v", c.NeonOrgKeys, k, err)
	}
	var l orgList
	if err := l.Decode(c.NeonOrgIDs.String()); err != nil || !reflect.DeepEqual(l, c.NeonOrgIDs) {
		t.Fatalf("NEON_ORG_IDS %v does not read back: %v, %v", c.NeonOrgIDs, l, err)
	}
}

// FuzzOrgSettings reads the two list settings of organizations directly, and validates them
// together: a malformed item is refused naming it, an accepted list reads back from its String.
func FuzzOrgSettings(f *testing.F) {
	f.Add("org-a,org-b:legacy", "org-b=/run/secrets/b")
	f.Add("org-a:v2, org-b:legacy ,org-c", "org-c=/k, org-b=/k")
	f.Add("org-a,,org-a", "org-a=")
	f.Add("org-a:legacy:v2", "org-a=/k=/j")
	f.Add("", "")
	f.Add("Org_A", "x")
	f.Fuzz(func(t *testing.T, ids, keyFiles string) {
		if len(ids)+len(keyFiles) > 4096 {
			return
		}
		var k orgKeyFiles
		if err := k.Decode(keyFiles); err != nil {
			if !strings.Contains(err.Error(), "want org-id=file") && !strings.Contains(err.Error(), "named twice") {
				t.Fatalf("key files %q: error %q names no item", keyFiles, err)
			}
			return
		}
		env := fuzzBaseEnv()
		env["NEONMETER_NEON_ORG_IDS"], env["NEONMETER_NEON_ORG_KEY_FILES"] = ids, keyFiles
		c, err := configFromEnv(env)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		var problems []string
		c.validateOrgs(func(env, format string, a ...any) {
			problems = append(problems, env+": "+fmt.Sprintf(format, a...))
		})
		for _, p := range problems {
			if !strings.HasPrefix(p, "NEON_ORG_IDS: ") && !strings.HasPrefix(p, "NEON_ORG_KEY_FILES: ") {
				t.Fatalf("problem %q names neither list", p)
			}
		}
		if len(problems) == 0 {
			checkConfig(t, c)
		}
	})
}

// The fuzz targets build configurations with configFromEnv; it must read an environment
// exactly as processEnv reads the process's.
func TestConfigFromEnv_MatchesProcessEnv(t *testing.T) {
	for _, env := range []map[string]string{fuzzBaseEnv(), {
		"NEONMETER_NEON_ORG_ID": "org-a", "NEONMETER_BILLING_RATE": "16.5", "NEONMETER_NEON_CONSUMPTION_BURST": "0x10", "NEONMETER_CLICKHOUSE_TLS": "1",
		"NEONMETER_ENFORCEMENT_NEVER_SUSPEND": "", "NEONMETER_COLLECT_VALUE_BOUNDS": "", "NEONMETER_LEASE_TTL": "90s",
	}} {
		clearEnv(t)
		for k, v := range env {
			t.Setenv(k, v)
		}
		var want Config
		if err := processEnv(&want); err != nil {
			t.Fatal(err)
		}
		got, err := configFromEnv(env)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("configFromEnv\n%+v\nprocessEnv\n%+v", got, want)
		}
	}
	if _, err := configFromEnv(map[string]string{"NEONMETER_NEON_TIMEOUT": "soon"}); err == nil || !strings.Contains(err.Error(), "NEONMETER_NEON_TIMEOUT") {
		t.Fatalf("bad duration: %v", err)
	}
}
