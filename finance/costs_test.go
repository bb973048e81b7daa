package finance_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neonmeter/neonmeter/finance"
	"github.com/neonmeter/neonmeter/plans"
)

func exampleCatalog(t *testing.T) *plans.Catalog {
	t.Helper()
	cat, err := plans.Load(filepath.Join("..", "plans", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// The shipped example must load against the shipped catalog, with exact micro-unit prices.
func TestCosts_ExampleLoads(t *testing.T) {
	c, err := finance.LoadCosts("example-costs.yaml", exampleCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	cu := c.Neon["compute_unit_seconds"]
	if c.Currency != "usd" || cu.Divisor != 3600 || cu.Micros != 160_000 {
		t.Fatalf("compute cost = %+v, currency %q", cu, c.Currency)
	}
	p, ok := c.Price("pro", "public_network_transfer_bytes")
	if !ok || p.Target != "neon_transfer" || p.Micros != 150_000 || p.Rounding != plans.RoundCeil || p.Divisor != 1e9 {
		t.Fatalf("pro transfer price = %+v, %v", p, ok)
	}
	// Enterprise bills legacy prices the file does not price: they count at 0.
	if p, ok := c.Price("enterprise", "written_data_bytes"); !ok || p.Micros != 0 || p.Target != "price_enterprise_written_legacy" {
		t.Fatalf("unpriced enterprise meter = %+v, %v", p, ok)
	}
	if _, ok := c.Price("free", "compute_unit_seconds"); ok {
		t.Fatal("free bills nothing, so it has no price")
	}
}

// Known answers of the exact arithmetic: 1.5 CU-hours at 0.16 is 0.24; storage in byte-hours
// floors to the micro-unit; a started GB of transfer bills a whole unit under ceil.
func TestCosts_ExactArithmetic(t *testing.T) {
	c, err := finance.LoadCosts("example-costs.yaml", exampleCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Cost("compute_unit_seconds", 5400); !ok || v != 240_000 {
		t.Fatalf("cost of 5400 CU-s = %d, %v", v, ok)
	}
	// 1 GB held 1 h = 1e9 byte-hours = 1/744 GB-month: 0.35 / 744 = 0.000470430… → 470 micros.
	if v, ok := c.Cost("root_branch_bytes_month", 1e9); !ok || v != 470 {
		t.Fatalf("cost of one GB-hour = %d, %v", v, ok)
	}
	// 100 TB-months of storage: the 128-bit product does not wrap.
	if v, ok := c.Cost("root_branch_bytes_month", 100_000*744e9); !ok || v != 35_000*1_000_000 {
		t.Fatalf("cost of 100,000 GB-months = %d, %v", v, ok)
	}
	p, _ := c.Price("pro", "public_network_transfer_bytes")
	if v, ok := p.Of(1e9 + 1); !ok || v != 300_000 || p.Units(1e9+1) != 2 {
		t.Fatalf("revenue of 1 GB + 1 byte = %d (%d units), %v", v, p.Units(1e9+1), ok)
	}
	if _, ok := c.Cost("extra_branches_month", 1); ok {
		t.Fatal("an unpriced metric must say so")
	}
}

func TestParseMicros(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "0.16": 160_000, "12": 12_000_000, "0.000001": 1, "1.5": 1_500_000} {
		if got, err := finance.ParseMicros(in); err != nil || got != want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "NaN", ".nan", "inf", "1e3", "0.0000001", "", "1,5"} {
		if _, err := finance.ParseMicros(in); err == nil {
			t.Errorf("ParseMicros(%q) accepted", in)
		}
	}
	if got := finance.FormatMicros(-1_250_000); got != "-1.250000" {
		t.Errorf("FormatMicros = %q", got)
	}
	if got := finance.FormatMicros(math.MaxInt64); !strings.HasPrefix(got, "9223372036854.") {
		t.Errorf("FormatMicros(max) = %q", got)
	}
}

// Each broken table is refused, naming the file and the field at fault.
func TestCosts_BadFilesRefusedNamingTheField(t *testing.T) {
	const good = "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: 0.16}\n"
	cases := []struct{ name, yaml, field, msg string }{
		{"unknown metric", "version: 1\ncurrency: usd\nneon:\n  compute_seconds: {unit: CU-hour, price: 0.16}\n", "neon.compute_seconds", "unknown metric"},
		{"level metric", "version: 1\ncurrency: usd\nneon:\n  synthetic_storage_size_bytes: {unit: GB, price: 1}\n", "neon.synthetic_storage_size_bytes", "unknown metric"},
		{"negative price", "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: -0.16}\n", "neon.compute_unit_seconds.price", "negative"},
		{"NaN price", "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: .nan}\n", "neon.compute_unit_seconds.price", "not a number"},
		{"missing price", "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour}\n", "neon.compute_unit_seconds.price", "missing"},
		{"wrong unit", "version: 1\ncurrency: usd\nneon:\n  compute_unit_seconds: {unit: GB, price: 1}\n", "neon.compute_unit_seconds.unit", "does not measure"},
		{"missing currency", "version: 1\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: 0.16}\n", "currency", "ISO 4217"},
		{"missing version", "currency: usd\nneon:\n  compute_unit_seconds: {unit: CU-hour, price: 0.16}\n", "version", "must be 1"},
		{"unknown plan", good + "plans:\n  gold: {neon_compute: 1}\n", "plans.gold", "unknown plan"},
		{"unknown meter", good + "plans:\n  pro: {neon_compte: 1}\n", "plans.pro.neon_compte", "bills nothing"},
		{"huge price", "version: 1\ncurrency: usd\nneon:\n  root_branch_bytes_month: {unit: TB-month, price: 999999999999}\n", "neon.root_branch_bytes_month.price", "too large"},
	}
	cat := exampleCatalog(t)
	if _, err := finance.ParseCosts("costs.yaml", []byte(good), cat); err != nil {
		t.Fatalf("the good base is refused: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := finance.ParseCosts("costs.yaml", []byte(tc.yaml), cat)
			var ve *plans.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
			found := false
			for _, p := range ve.Problems {
				if p.File == "costs.yaml" && p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					found = true
				}
			}
			if !found || !strings.Contains(err.Error(), "costs.yaml") {
				t.Fatalf("want a problem at %s containing %q, got:\n%v", tc.field, tc.msg, err)
			}
		})
	}
	if _, err := finance.ParseCosts("costs.yaml", []byte(good+"margin: 3\n"), cat); err == nil || !strings.Contains(err.Error(), "margin") {
		t.Fatalf("an unknown key must be refused, got %v", err)
	}
}
