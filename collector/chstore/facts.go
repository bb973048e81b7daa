package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/collector"
	"github.com/neonmeter/neonmeter/schema"
)

// storedValue is one stored hourly fact in compact form: its project and metric are positions
// in the lists the caller passed, its hour is Unix seconds. Reading numbers instead of strings
// keeps the collector's per-page read cheap.
type storedValue struct {
	Project, Metric int
	Hour            int64
	Value, Version  uint64
}

// LoadStored records in the grid every stored version of every hourly fact of its projects and
// metrics in [from, to); the grid keeps the highest version per key.
func (s *Store) LoadStored(ctx context.Context, g *collector.Grid, from, to time.Time) error {
	return s.scanStored(ctx, g.OrgID, g.Projects, g.Metrics, from, to, func(v storedValue) {
		g.Store(v.Project, v.Metric, v.Hour, v.Value, v.Version)
	})
}

// scanStored calls fn with every stored version of every hourly fact of these projects and
// metrics in [from, to). Facts of other metrics are not read.
//
// It reads without FINAL on purpose: on 18.16, FINAL over the scattered key ranges of a page of
// projects (pages follow Neon's creation order, not the key order) costs about 4× a plain read,
// and versions of a key are unique (writers raise them above the stored one), so picking the
// highest version client-side is the same rule FINAL applies.
func (s *Store) scanStored(ctx context.Context, orgID string, projectIDs, metrics []string, from, to time.Time, fn func(storedValue)) error {
	if len(metrics) == 0 {
		return nil
	}
	for start := 0; start < len(projectIDs); start += schema.MaxInList {
		chunk := projectIDs[start:min(start+schema.MaxInList, len(projectIDs))]
		if err := s.scanStoredChunk(ctx, scanStoredQuery(orgID, chunk, metrics, from, to), start, fn); err != nil {
			return fmt.Errorf("stored facts org %s: %w", orgID, err)
		}
	}
	return nil
}

func (s *Store) scanStoredChunk(ctx context.Context, q schema.Query, offset int, fn func(storedValue)) error {
	var (
		p, m         uint64
		h            uint32
		value, versn uint64
	)
	return q.Each(ctx, s.Conn, s.DB, func(rows schema.Row) error {
		if err := rows.Scan(&p, &m, &h, &value, &versn); err != nil {
			return err
		}
		// indexOf is 1-based; the IN lists guarantee a match.
		fn(storedValue{Project: offset + int(p) - 1, Metric: int(m) - 1, Hour: int64(h), Value: value, Version: versn})
		return nil
	})
}

func scanStoredQuery(orgID string, projectIDs, metrics []string, from, to time.Time) schema.Query {
	args := make([]any, 0, 2*len(projectIDs)+2*len(metrics)+3)
	for _, p := range projectIDs {
		args = append(args, p)
	}
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, orgID)
	for _, p := range projectIDs {
		args = append(args, p)
	}
	for _, m := range metrics {
		args = append(args, m)
	}
	args = append(args, schema.UTC(from), schema.UTC(to))
	return schema.Query{Name: "facts.scan_stored", Kind: schema.KindSelect, Args: args,
		SQL: `SELECT indexOf([` + schema.InList(len(projectIDs)) + `], project_id) AS p, indexOf([` + schema.InList(len(metrics)) + `], metric) AS m,
  toUInt32(hour) AS h, value, version
FROM {db}.usage_facts
WHERE org_id = ? AND project_id IN (` + schema.InList(len(projectIDs)) + `) AND metric IN (` + schema.InList(len(metrics)) + `) AND hour >= ? AND hour < ?`}
}

// InsertFacts writes facts to usage_facts in one batch. A fact whose key is already stored
// replaces it when its version is higher; nothing is ever added up. Hours must be on the hour.
//
// It is the collector's hot path, so it appends whole columns rather than rows of interfaces:
// the same statement as insertFactsQuery, several times faster on large batches.
func (s *Store) InsertFacts(ctx context.Context, facts []collector.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	n := len(facts)
	var (
		orgs, projects, metrics = make([]string, n), make([]string, n), make([]string, n)
		periods, plans          = make([]string, n), make([]string, n)
		hours, collected        = make([]time.Time, n), make([]time.Time, n)
		values, versions        = make([]uint64, n), make([]uint64, n)
	)
	for i, f := range facts {
		if err := checkFact(f); err != nil {
			return fmt.Errorf("insert facts: %w", err)
		}
		orgs[i], projects[i], metrics[i] = f.OrgID, f.ProjectID, f.Metric
		hours[i], values[i], periods[i], plans[i] = schema.UTC(f.Hour), f.Value, f.PeriodID, f.PeriodPlan
		collected[i], versions[i] = schema.UTC(f.CollectedAt), f.Version
	}
	q := insertFactsQuery(nil)
	if err := q.InsertColumns(ctx, s.Conn, s.DB, orgs, projects, metrics, hours, values, periods, plans, collected, versions); err != nil {
		return fmt.Errorf("insert facts: %w", err)
	}
	return nil
}

func checkFact(f collector.Fact) error {
	switch {
	case f.OrgID == "" || f.ProjectID == "" || f.Metric == "":
		return fmt.Errorf("fact %s/%s/%s %s: empty org, project or metric", f.OrgID, f.ProjectID, f.Metric, f.Hour.UTC().Format(time.RFC3339))
	case !f.Hour.Truncate(time.Hour).Equal(f.Hour) || f.Hour.Unix() <= 0:
		return fmt.Errorf("fact %s/%s/%s: hour %s is not the start of an hour after 1970", f.OrgID, f.ProjectID, f.Metric, f.Hour.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func insertFactsQuery(facts []collector.Fact) schema.Query {
	return schema.Query{Name: "facts.insert", Kind: schema.KindInsert,
		SQL: "INSERT INTO {db}.usage_facts (org_id, project_id, metric, hour, value, period_id, period_plan, collected_at, version)",
		Rows: schema.RowsOf(facts, func(f collector.Fact) []any {
			return []any{f.OrgID, f.ProjectID, f.Metric, schema.UTC(f.Hour), f.Value, f.PeriodID, f.PeriodPlan, schema.UTC(f.CollectedAt), f.Version}
		})}
}

// usageTotalsQuery sums the organization's hourly facts in [from, to) per (project, metric)
// through usage_hourly, the contract billing and finance read. The product does not run it;
// the store's tests read totals with it (export_test.go), and the registry checks it on both
// engines.
func usageTotalsQuery(orgID string, from, to time.Time) schema.Query {
	return schema.Query{Name: "usage.totals", Kind: schema.KindSelect, Args: []any{orgID, schema.UTC(from), schema.UTC(to)}, SQL: `SELECT project_id, metric, sum(value) AS total
FROM {db}.usage_hourly
WHERE org_id = ? AND hour >= ? AND hour < ?
GROUP BY project_id, metric
ORDER BY project_id, metric`}
}
