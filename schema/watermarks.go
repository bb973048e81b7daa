package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Watermark returns how far the (org, endpoint, granularity) is known complete, and false if
// nothing was recorded yet.
func Watermark(ctx context.Context, conn driver.Conn, db, orgID, endpoint, granularity string) (time.Time, bool, error) {
	rows, err := watermarkQuery(orgID, endpoint, granularity).Select(ctx, conn, db)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("watermark org %s %s %s: %w", orgID, endpoint, granularity, err)
	}
	defer rows.Close()
	var (
		covered time.Time
		found   bool
	)
	for rows.Next() {
		if err := rows.Scan(&covered); err != nil {
			return time.Time{}, false, fmt.Errorf("watermark org %s %s %s: scan: %w", orgID, endpoint, granularity, err)
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("watermark org %s %s %s: %w", orgID, endpoint, granularity, err)
	}
	if !found {
		return time.Time{}, false, nil
	}
	return covered.UTC(), true, nil
}

func watermarkQuery(orgID, endpoint, granularity string) Query {
	return Query{Name: "watermarks.get", Kind: KindSelect, Args: []any{orgID, endpoint, granularity}, SQL: `SELECT covered_until
FROM {db}.collection_watermarks FINAL
WHERE org_id = ? AND endpoint = ? AND granularity = ?`}
}

// SetWatermark records that (org, endpoint, granularity) is complete up to coveredUntil. The
// latest call wins, by now (to the second), then by insertion order; it may move the watermark
// back, as a rebuild does.
func SetWatermark(ctx context.Context, conn driver.Conn, db, orgID, endpoint, granularity string, coveredUntil, now time.Time) error {
	if err := checkSource(endpoint, granularity); err != nil || orgID == "" || coveredUntil.Unix() <= 0 {
		return fmt.Errorf("set watermark org %q %s %s: need an org, a known endpoint and granularity and a time after 1970", orgID, endpoint, granularity)
	}
	if err := setWatermarkQuery(orgID, endpoint, granularity, coveredUntil, now).Insert(ctx, conn, db); err != nil {
		return fmt.Errorf("set watermark org %s %s %s: %w", orgID, endpoint, granularity, err)
	}
	return nil
}

func setWatermarkQuery(orgID, endpoint, granularity string, coveredUntil, now time.Time) Query {
	return Query{Name: "watermarks.set", Kind: KindInsert,
		SQL:  "INSERT INTO {db}.collection_watermarks (org_id, endpoint, granularity, covered_until, updated_at)",
		Rows: [][]any{{orgID, endpoint, granularity, UTC(coveredUntil), UTC(now)}}}
}
