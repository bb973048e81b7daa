package collector

import (
	"context"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/neonmeter/neonmeter/schema"
)

// ClickHouseStore is the collector's Store on ClickHouse, through the schema package's queries.
type ClickHouseStore struct {
	conn driver.Conn
	db   string
}

var (
	_ Store        = (*ClickHouseStore)(nil)
	_ CoarseStore  = (*ClickHouseStore)(nil)
	_ StatusReader = (*ClickHouseStore)(nil)
)

// NewClickHouseStore uses database db over conn.
func NewClickHouseStore(conn driver.Conn, db string) *ClickHouseStore {
	return &ClickHouseStore{conn: conn, db: db}
}

func (s *ClickHouseStore) LoadStored(ctx context.Context, g *Grid, from, to time.Time) error {
	return schema.ScanStoredFacts(ctx, s.conn, s.db, g.OrgID, g.Projects, g.Metrics, from, to, func(v schema.StoredValue) {
		g.Store(v.Project, v.Metric, v.Hour, v.Value, v.Version)
	})
}

func (s *ClickHouseStore) InsertFacts(ctx context.Context, facts []schema.Fact) error {
	return schema.InsertFacts(ctx, s.conn, s.db, facts)
}

func (s *ClickHouseStore) InsertRevisions(ctx context.Context, revs []schema.Revision) error {
	return schema.InsertRevisions(ctx, s.conn, s.db, revs)
}

func (s *ClickHouseStore) WriteRun(ctx context.Context, r schema.Run) error {
	return schema.WriteRun(ctx, s.conn, s.db, r)
}

// Runs returns the runs of one org and endpoint started since the given time.
func (s *ClickHouseStore) Runs(ctx context.Context, orgID, endpoint string, since time.Time) ([]schema.Run, error) {
	all, err := schema.Runs(ctx, s.conn, s.db, since)
	if err != nil {
		return nil, err
	}
	var out []schema.Run
	for _, r := range all {
		if r.OrgID == orgID && r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out, nil
}

// LastRun returns the newest successful run of an org, endpoint and granularity in the last
// 30 days.
func (s *ClickHouseStore) LastRun(ctx context.Context, orgID, endpoint, granularity string) (schema.Run, bool, error) {
	runs, err := s.Runs(ctx, orgID, endpoint, time.Now().Add(-30*24*time.Hour))
	if err != nil {
		return schema.Run{}, false, err
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.After(runs[j].StartedAt) })
	for _, r := range runs {
		if r.Granularity == granularity && r.Outcome == schema.OutcomeSuccess {
			return r, true, nil
		}
	}
	return schema.Run{}, false, nil
}

func (s *ClickHouseStore) Watermark(ctx context.Context, orgID, endpoint, granularity string) (time.Time, bool, error) {
	return schema.Watermark(ctx, s.conn, s.db, orgID, endpoint, granularity)
}

func (s *ClickHouseStore) SetWatermark(ctx context.Context, orgID, endpoint, granularity string, coveredUntil, now time.Time) error {
	return schema.SetWatermark(ctx, s.conn, s.db, orgID, endpoint, granularity, coveredUntil, now)
}

// LoadStoredCoarse records in the grid the stored coarse facts of one granularity.
func (s *ClickHouseStore) LoadStoredCoarse(ctx context.Context, g *Grid, granularity string, from, to time.Time) error {
	m, err := schema.StoredCoarseFacts(ctx, s.conn, s.db, g.OrgID, g.Projects, from, to)
	if err != nil {
		return err
	}
	for k, v := range m {
		if k.Granularity == granularity {
			g.StoreByName(k.ProjectID, k.Metric, k.BucketStart, v.Value, v.Version)
		}
	}
	return nil
}

func (s *ClickHouseStore) InsertCoarseFacts(ctx context.Context, facts []schema.CoarseFact) error {
	return schema.InsertCoarseFacts(ctx, s.conn, s.db, facts)
}
