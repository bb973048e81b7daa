package schema

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DropExpiredPartitions drops the monthly partitions of usage_facts, usage_revisions and
// usage_coarse whose every row is more than keepMonths months older than now: with keepMonths
// 25 on 2026-03-15, months up to 2024-01 go and 2024-02 stays. It returns what it dropped as
// "table/YYYYMM". ClickHouse 18.16 has no TTL, hence dropping by hand; dropping whole
// partitions is cheap and never leaves part of a month.
func DropExpiredPartitions(ctx context.Context, conn driver.Conn, db string, keepMonths int, now time.Time) ([]string, error) {
	if keepMonths < 1 {
		return nil, fmt.Errorf("drop expired partitions: keep months must be at least 1, got %d", keepMonths)
	}
	now = now.UTC()
	// A month ends when the next begins; it has expired when that is at or before now minus
	// keepMonths months, that is when the month is before the month of now minus keepMonths.
	cutoff := monthIndex(now.Year(), int(now.Month())) - keepMonths
	parts, err := listPartitions(ctx, conn, db)
	if err != nil {
		return nil, fmt.Errorf("drop expired partitions: %w", err)
	}
	var dropped []string
	for _, p := range parts {
		yyyymm, err := strconv.Atoi(p.partition)
		if err != nil || len(p.partition) != 6 {
			return dropped, fmt.Errorf("drop expired partitions: %s partition %q is not a month", p.table, p.partition)
		}
		if monthIndex(yyyymm/100, yyyymm%100) >= cutoff {
			continue
		}
		if err := dropPartitionQuery(p.table, yyyymm).Exec(ctx, conn, db); err != nil {
			return dropped, fmt.Errorf("drop expired partitions: %s %s: %w", p.table, p.partition, err)
		}
		dropped = append(dropped, p.table+"/"+p.partition)
	}
	return dropped, nil
}

func monthIndex(year, month int) int { return year*12 + month - 1 }

type tablePartition struct{ table, partition string }

func listPartitions(ctx context.Context, conn driver.Conn, db string) ([]tablePartition, error) {
	return All(ctx, listPartitionsQuery(), conn, db, func(row Row) (tablePartition, error) {
		var p tablePartition
		err := row.Scan(&p.table, &p.partition)
		// On a sharded cluster the parts belong to the local tables; ALTER names the table.
		p.table = strings.TrimSuffix(p.table, localSuffix)
		return p, err
	})
}

// listPartitionsQuery lists the partitions of the tables retention trims: those partitioned by
// toYYYYMM of their hour or bucket start. On a sharded cluster it lists them on every shard,
// since a month may have rows on one shard only.
func listPartitionsQuery() Query {
	return Query{Name: "retention.partitions", Kind: KindSelect, SQL: `SELECT table, partition
FROM {each_shard:system.parts}
WHERE database = '{db}' AND active AND table IN ('{local:usage_coarse}', '{local:usage_facts}', '{local:usage_revisions}')
GROUP BY table, partition
ORDER BY table, partition`}
}

// dropPartitionQuery pastes the table and month in (ALTER cannot bind a table): the table comes
// from listPartitionsQuery's fixed list and the month is a number. On a sharded cluster it
// renders for the local table on every shard.
func dropPartitionQuery(table string, yyyymm int) Query {
	return Query{Name: "retention.drop_partition", Kind: KindExec,
		SQL: fmt.Sprintf("ALTER TABLE {db}.%s{on_cluster} DROP PARTITION %06d", table, yyyymm)}
}
