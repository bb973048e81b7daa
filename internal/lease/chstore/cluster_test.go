package chstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/internal/lease/chstore"
)

// On a cluster the backend refuses before it creates anything, naming the setting: its
// generation tables would be per server, and two replicas could grant one lease twice.
func TestTryAcquire_RefusesCluster(t *testing.T) {
	if err := chstore.Usable(chtest.Connect(t)); err != nil {
		t.Fatalf("one server: %v", err)
	}
	c := chtest.NeedCluster(t)
	conn := c.Connect(t)
	_, err := chstore.New(conn, "neonmeter", nil).TryAcquire(t.Context(), "billing", lease.Holder{Host: "h", PID: 1, RunID: "r"}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "NEONMETER_CLICKHOUSE_CLUSTER") || !strings.Contains(err.Error(), c.Name) {
		t.Fatalf("TryAcquire on cluster %s = %v, want a refusal naming the cluster and NEONMETER_CLICKHOUSE_CLUSTER", c.Name, err)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM system.tables WHERE name LIKE 'lease_billing_%'"); n != 0 {
		t.Fatalf("%d lease tables exist after the refusal", n)
	}
}
