package plans_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/neon"
	"github.com/neonmeter/neonmeter/plans"
)

func loadExample(t *testing.T) *plans.Catalog {
	t.Helper()
	c, err := plans.Load("example.yaml")
	if err != nil {
		t.Fatalf("example catalog: %v", err)
	}
	return c
}

func TestLoad_Example(t *testing.T) {
	c := loadExample(t)
	if got := c.Names(); !reflect.DeepEqual(got, []string{"free", "pro", "enterprise"}) {
		t.Fatalf("plans = %v", got)
	}
	free, _ := c.Plan("free")
	pro, _ := c.Plan("pro")
	ent, _ := c.Plan("enterprise")

	neonTests := []struct {
		plan *plans.Plan
		want plans.NeonSettings
	}{
		{free, plans.NeonSettings{ManageAutoscaling: true, MinCU: 0.25, MaxCU: 0.25, ManageSuspend: true, SuspendTimeoutSeconds: 300}},
		{pro, plans.NeonSettings{ManageAutoscaling: true, MinCU: 0.25, MaxCU: 2, ManageSuspend: true, SuspendTimeoutSeconds: 600}},
		{ent, plans.NeonSettings{ManageAutoscaling: true, MinCU: 1, MaxCU: 8}},
	}
	for _, tt := range neonTests {
		if tt.plan.Neon != tt.want {
			t.Errorf("%s neon = %+v, want %+v", tt.plan.Name, tt.plan.Neon, tt.want)
		}
	}

	// The table of the issue, on v2 and on legacy metrics, in raw units.
	limits := []struct {
		plan      *plans.Plan
		metric    string
		kind      plans.LimitKind
		max       uint64
		unlimited bool
	}{
		{free, "compute_unit_seconds", plans.KindHard, 100 * 3600 / 4, false},
		{free, "active_time_seconds", plans.KindHard, 100 * 3600, false},
		{free, "root_branch_bytes_month", plans.KindHard, 512e6 * 744, false},
		{free, "synthetic_storage_size_bytes", plans.KindHard, 512e6, false},
		{free, "public_network_transfer_bytes", plans.KindHard, 5e9, false},
		{free, "data_transfer_bytes", plans.KindHard, 5e9, false},
		{free, "written_data_bytes", plans.KindHard, 1e9, false},
		{pro, "compute_unit_seconds", plans.KindSoft, 750 * 3600 * 2, false},
		{pro, "active_time_seconds", plans.KindNone, 750 * 3600, false},
		{pro, "root_branch_bytes_month", plans.KindSoft, 10e9 * 744, false},
		{pro, "data_storage_bytes_hour", plans.KindSoft, 10e9 * 744, false},
		{pro, "public_network_transfer_bytes", plans.KindSoft, 50e9, false},
		{pro, "written_data_bytes", plans.KindSoft, 50e9, false},
		{ent, "compute_unit_seconds", plans.KindNone, 0, true},
		{ent, "active_time_seconds", plans.KindNone, 0, true},
		{ent, "root_branch_bytes_month", plans.KindSoft, 100e9 * 744, false},
		{ent, "public_network_transfer_bytes", plans.KindNone, 0, true},
		{ent, "written_data_bytes", plans.KindNone, 0, true},
	}
	for _, tt := range limits {
		l, ok := tt.plan.Limit(tt.metric)
		if !ok || l.Kind != tt.kind || l.Max != tt.max || l.Unlimited != tt.unlimited {
			t.Errorf("%s %s = %+v (found %v), want kind %s max %d unlimited %v", tt.plan.Name, tt.metric, l, ok, tt.kind, tt.max, tt.unlimited)
		}
	}
	if l, _ := pro.Limit("compute_unit_seconds"); !reflect.DeepEqual(l.WarnAt, []int{50, 80, 100}) {
		t.Errorf("pro compute warn_at = %v", l.WarnAt)
	}
	if l, _ := free.Limit("written_data_bytes"); !reflect.DeepEqual(l.WarnAt, []int{80, 100}) {
		t.Errorf("free written warn_at = %v, want the default", l.WarnAt)
	}
	if len(free.Billing) != 0 {
		t.Errorf("free bills %v", free.Billing)
	}

	billing := []struct {
		plan   *plans.Plan
		metric string
		want   plans.Billing
	}{
		{pro, "compute_unit_seconds", plans.Billing{Metric: "compute_unit_seconds", MeterEventName: "neon_compute", Unit: "CU-hour", Divisor: 3600, Rounding: plans.RoundFloor}},
		{pro, "root_branch_bytes_month", plans.Billing{Metric: "root_branch_bytes_month", MeterEventName: "neon_storage_root", Unit: "MB-month", Divisor: 744e6, Rounding: plans.RoundFloor}},
		{pro, "public_network_transfer_bytes", plans.Billing{Metric: "public_network_transfer_bytes", MeterEventName: "neon_transfer", Unit: "GB", Divisor: 1e9, Rounding: plans.RoundCeil}},
		{pro, "compute_time_seconds", plans.Billing{Metric: "compute_time_seconds", PriceID: "price_pro_compute_legacy", Unit: "CU-hour", Divisor: 3600, Rounding: plans.RoundFloor}},
		{ent, "written_data_bytes", plans.Billing{Metric: "written_data_bytes", PriceID: "price_enterprise_written_legacy", Unit: "GB", Divisor: 1e9, Rounding: plans.RoundFloor}},
	}
	for _, tt := range billing {
		if got, ok := tt.plan.BillingFor(tt.metric); !ok || got != tt.want {
			t.Errorf("%s billing %s = %+v, want %+v", tt.plan.Name, tt.metric, got, tt.want)
		}
	}

	for key, want := range map[string]string{"free": "free", "pro": "pro", "pro_annual": "pro", "enterprise_annual": "enterprise"} {
		if p, ok := c.PlanForLookupKey(key); !ok || p.Name != want {
			t.Errorf("lookup key %s → %v, want %s", key, p, want)
		}
	}
	if _, ok := c.PlanForLookupKey("addon"); ok {
		t.Errorf("lookup key addon names a plan")
	}
}

// Every limit of the example's table is expressed on both metric sets.
func TestLoad_ExampleCoversBothMetricSets(t *testing.T) {
	c := loadExample(t)
	for _, p := range c.Plans {
		var v2, legacy int
		for m := range p.Limits {
			mi, _ := plans.LookupMetric(m)
			if mi.Routes&plans.RouteV2 != 0 {
				v2++
			} else {
				legacy++
			}
		}
		if v2 < 3 || legacy < 5 {
			t.Errorf("plan %s limits %d v2 and %d legacy/counter metrics", p.Name, v2, legacy)
		}
	}
}

func TestParse_Broken(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("broken catalogs: %d files, %v; want at least 10", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatalf("%s has no '# want:' line", f)
			}
			c, err := plans.Load(f)
			if c != nil || err == nil {
				t.Fatalf("Load accepted a broken catalog")
			}
			var ve *plans.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %T %v, want a *ValidationError", err, err)
			}
			msg := err.Error()
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("problems do not mention %q:\n%s", w, msg)
				}
			}
			if len(ve.Problems) < len(wants) {
				t.Errorf("%d problems, want at least %d", len(ve.Problems), len(wants))
			}
			for _, p := range ve.Problems {
				if p.File != f {
					t.Errorf("problem %q names file %q", p, p.File)
				}
			}
		})
	}
}

// All problems of a file come back at once, in line order.
func TestParse_ReportsEveryProblem(t *testing.T) {
	src := `version: 1
plans:
  - name: free
    neon: {autoscaling_min_cu: 2, autoscaling_max_cu: 1, suspend_timeout: 1s}
    limits:
      bogus_metric: {kind: hard, max: 1}
      written_data_bytes: {kind: hard, max: -5}
  - name: free
`
	_, err := plans.Parse("cat.yaml", []byte(src))
	var ve *plans.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`cat.yaml:4: plan "free": neon.autoscaling_min_cu: min CU 2 is above max CU 1`,
		`cat.yaml:4: plan "free": neon.suspend_timeout: 1s is outside Neon's range of whole seconds from 60s to 168h (or "never")`,
		`cat.yaml:6: plan "free": limits.bogus_metric: unknown metric "bogus_metric"`,
		`cat.yaml:7: plan "free": limits.written_data_bytes.max: negative limit -5`,
		`cat.yaml:8: plan "free": name: duplicate plan name "free" (first defined on line 3)`,
	}
	if len(ve.Problems) != len(want) {
		t.Fatalf("got %d problems:\n%v", len(ve.Problems), err)
	}
	for i, w := range want {
		if got := ve.Problems[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d = %q\nwant prefix %q", i, got, w)
		}
	}
}

func TestParse_Quantities(t *testing.T) {
	tests := []struct {
		metric, max string
		want        uint64
		err         string
	}{
		{"active_time_seconds", "100h", 360000, ""},
		{"active_time_seconds", "90 min", 5400, ""},
		{"active_time_seconds", "1.5 hours", 5400, ""},
		{"active_time_seconds", "3600", 3600, ""},
		{"compute_unit_seconds", "25 CU-hour", 90000, ""},
		{"compute_unit_seconds", "0.25 cu-h", 900, ""},
		{"written_data_bytes", "1 GB", 1e9, ""},
		{"written_data_bytes", "1 GiB", 1 << 30, ""},
		{"written_data_bytes", "512MB", 512e6, ""},
		{"root_branch_bytes_month", "0.512 GB-month", 512e6 * 744, ""},
		{"root_branch_bytes_month", "1 GB-hour", 1e9, ""},
		{"extra_branches_month", "2 branch-months", 2 * 744, ""},
		{"active_time_seconds", "0.5", 0, "must be a whole number"},
		{"active_time_seconds", "1 GB", 0, `unit "GB" does not measure seconds`},
		{"written_data_bytes", "1.5 B", 0, "not a whole number of bytes"},
		{"written_data_bytes", "lots", 0, "is not a number"},
		{"written_data_bytes", "99999999999 TB", 0, "too large"},
		{"written_data_bytes", "-1", 0, "negative limit"},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"="+tt.max, func(t *testing.T) {
			src := "version: 1\nplans:\n  - name: p\n    limits:\n      " + tt.metric + ": {kind: hard, max: \"" + tt.max + "\"}\n"
			c, err := plans.Parse("q.yaml", []byte(src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, _ := c.Plan("p")
			if l, _ := p.Limit(tt.metric); l.Max != tt.want {
				t.Fatalf("max = %d, want %d", l.Max, tt.want)
			}
		})
	}
}

func TestParse_EmptyAndMissingFile(t *testing.T) {
	if _, err := plans.Parse("empty.yaml", nil); err == nil || !strings.Contains(err.Error(), "no plans defined") {
		t.Fatalf("empty catalog: %v", err)
	}
	if _, err := plans.Load(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || errors.As(err, new(*plans.ValidationError)) {
		t.Fatalf("missing file: %v, want a plain read error", err)
	}
}

func TestLimit_Thresholds(t *testing.T) {
	l := plans.Limit{Max: 1001, WarnAt: []int{50, 80, 100, 120}}
	want := []plans.Threshold{{50, 501}, {80, 801}, {100, 1001}, {120, 1202}}
	if got := l.Thresholds(); !reflect.DeepEqual(got, want) {
		t.Fatalf("thresholds = %v, want %v", got, want)
	}
	big := plans.Limit{Max: 1 << 60, WarnAt: []int{1000}}
	if got := big.Thresholds()[0].Value; got != (1<<60)*10 {
		t.Fatalf("large threshold = %d", got)
	}
	if got := (plans.Limit{Unlimited: true, WarnAt: []int{80}}).Thresholds(); got != nil {
		t.Fatalf("unlimited thresholds = %v", got)
	}
}

// The catalog knows every metric neonmeter collects, on both routes.
func TestMetrics_CoverCollectedMetrics(t *testing.T) {
	for _, m := range append(neon.V2Metrics(), neon.LegacyMetrics()...) {
		mi, ok := plans.LookupMetric(m)
		if !ok || !mi.Collected() {
			t.Errorf("metric %s: %+v, %v", m, mi, ok)
		}
	}
	if mi, _ := plans.LookupMetric(plans.DataTransferBytes); mi.Collected() || mi.Billable() {
		t.Errorf("data_transfer_bytes is a counter only: %+v", mi)
	}
	if mi, _ := plans.LookupMetric("synthetic_storage_size_bytes"); !mi.Level || mi.Billable() {
		t.Errorf("synthetic_storage_size_bytes is a level: %+v", mi)
	}
	if n := len(plans.Metrics()); n != 16 {
		t.Errorf("%d metrics", n)
	}
}
