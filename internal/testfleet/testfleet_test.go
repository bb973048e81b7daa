package testfleet_test

import (
	"context"
	"testing"

	"github.com/neonmeter/neonmeter/internal/testfleet"
	"github.com/neonmeter/neonmeter/neon"
)

func TestNew_ServesTheFleetToItsClient(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Projects: 40})
	org := f.Org(t, "scale")
	if len(org.ProjectIDs) == 0 {
		t.Fatal("the scale org has no projects")
	}
	n := 0
	for page, err := range f.Client.ListProjects(context.Background(), neon.ListProjectsQuery{OrgID: org.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Projects)
	}
	if n != len(org.ProjectIDs) {
		t.Fatalf("listed %d projects, the org has %d", n, len(org.ProjectIDs))
	}
	var tables uint64
	if err := f.Conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ?", f.DB).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables == 0 {
		t.Fatalf("database %s is not migrated", f.DB)
	}
}
