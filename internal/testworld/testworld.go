// Package testworld builds the worlds the tests downstream of the collector run on (billing,
// enforcement, finance, dashboards, the report commands): rows seeded straight into a migrated
// database through each stage's store, the simulated fleet collected, projects mapped to
// customers through the accounts CSV import, the recording fake Stripe over HTTP, and billing's
// pusher at test speed. Tests keep their own catalogs, data and ground truth; the steps they
// share are written here once.
package testworld

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/accounts"
	accountsstore "github.com/neonmeter/neonmeter/accounts/chstore"
	"github.com/neonmeter/neonmeter/collector"
	collectorstore "github.com/neonmeter/neonmeter/collector/chstore"
	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon/sim"
	"github.com/neonmeter/neonmeter/plans"
)

// MeterCatalog is a plan catalog billing through Billing Meters only: pro bills three v2
// metrics (compute, root branch storage, transfer rounded up), free bills nothing.
const MeterCatalog = `version: 1
plans:
  - name: free
  - name: pro
    billing:
      compute_unit_seconds:          {meter: neon_compute, unit: CU-hour}
      root_branch_bytes_month:       {meter: neon_storage_root, unit: MB-month}
      public_network_transfer_bytes: {meter: neon_transfer, unit: GB, rounding: ceil}
`

// Catalog parses a plan catalog.
func Catalog(t testing.TB, yaml string) *plans.Catalog {
	t.Helper()
	cat, err := plans.Parse("catalog.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("testworld: catalog: %v\n%s", err, yaml)
	}
	return cat
}

// Collect sweeps the hours [from, to) of org into the fleet's database, through the legacy
// endpoint for a legacy org and v2 otherwise.
func Collect(t testing.TB, f *testfleet.Fleet, org sim.Org, from, to time.Time) {
	t.Helper()
	ep := collector.EndpointV2
	if org.Legacy {
		ep = collector.EndpointLegacy
	}
	c, err := collector.New(collector.Config{Consumption: f.Client, Store: collectorstore.New(f.Conn, f.DB), OrgID: org.ID, Endpoint: ep,
		Lookback: to.Sub(from), Provisional: 2 * time.Hour, Now: f.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sweep(context.Background(), collector.Window{From: from, To: to}); err != nil {
		t.Fatalf("testworld: collect %s: %v", org.ID, err)
	}
}

// Mapping is an accounts CSV mapping (project → customer and plan) under construction.
type Mapping struct{ csv strings.Builder }

// Add maps project to customer on plan from the instant from.
func (m *Mapping) Add(project, customer, plan string, from time.Time) {
	if m.csv.Len() == 0 {
		m.csv.WriteString("project_id,customer_id,plan,valid_from\n")
	}
	fmt.Fprintf(&m.csv, "%s,%s,%s,%s\n", project, customer, plan, from.UTC().Format(time.RFC3339))
}

// Import imports the mapping into database db, as `neonmeter accounts import` does at now.
func (m *Mapping) Import(t testing.TB, conn driver.Conn, db string, cat *plans.Catalog, now time.Time) {
	t.Helper()
	rows, err := accounts.ParseCSV("map.csv", strings.NewReader(m.csv.String()), cat, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Import(context.Background(), accountsstore.New(conn, db), rows, now, false, nil); err != nil {
		t.Fatal(err)
	}
}
