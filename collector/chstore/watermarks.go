package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// Watermark returns how far the feed is known complete, and false if nothing was recorded yet.
func (s *Store) Watermark(ctx context.Context, f collector.Feed) (time.Time, bool, error) {
	var (
		covered time.Time
		found   bool
	)
	err := watermarkQuery(f).Each(ctx, s.Conn, s.DB, func(rows schema.Row) error {
		found = true
		return rows.Scan(&covered)
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("watermark org %s %s %s: %w", f.OrgID, f.Endpoint, f.Granularity, err)
	}
	if !found {
		return time.Time{}, false, nil
	}
	return covered.UTC(), true, nil
}

func watermarkQuery(f collector.Feed) schema.Query {
	return schema.Query{Name: "watermarks.get", Kind: schema.KindSelect, Args: []any{f.OrgID, string(f.Endpoint), string(f.Granularity)}, SQL: `SELECT covered_until
FROM {db}.collection_watermarks FINAL
WHERE org_id = ? AND endpoint = ? AND granularity = ?`}
}

// SetWatermark records that the feed is complete up to coveredUntil. The latest call wins, by
// now (to the second), then by insertion order; it may move the watermark back, as a rebuild
// does.
func (s *Store) SetWatermark(ctx context.Context, f collector.Feed, coveredUntil, now time.Time) error {
	if err := checkFeed(f.Endpoint, f.Granularity); err != nil || f.OrgID == "" || coveredUntil.Unix() <= 0 {
		return fmt.Errorf("set watermark org %q %s %s: need an org, a known endpoint and granularity and a time after 1970", f.OrgID, f.Endpoint, f.Granularity)
	}
	if err := setWatermarkQuery(f, coveredUntil, now).Insert(ctx, s.Conn, s.DB); err != nil {
		return fmt.Errorf("set watermark org %s %s %s: %w", f.OrgID, f.Endpoint, f.Granularity, err)
	}
	return nil
}

func setWatermarkQuery(f collector.Feed, coveredUntil, now time.Time) schema.Query {
	return schema.Query{Name: "watermarks.set", Kind: schema.KindInsert,
		SQL:  "INSERT INTO {db}.collection_watermarks (org_id, endpoint, granularity, covered_until, updated_at)",
		Rows: [][]any{{f.OrgID, string(f.Endpoint), string(f.Granularity), schema.UTC(coveredUntil), schema.UTC(now)}}}
}
