package chstore

import (
	"fmt"
	"time"

	"github.com/neonmeter/neonmeter/internal/lease"
	"github.com/neonmeter/neonmeter/schema"
)

// The statements of the lease backend. Table names carry the job (validated by
// lease.ValidJob) and the generation, so they are part of the SQL rather than arguments:
// DDL cannot bind names.

// tableName is generation gen's table in database {db}.
func tableName(job string, gen uint64) string {
	return fmt.Sprintf("{db}.%s%d", tablePrefix(job), gen)
}

// createQuery creates generation gen with the holder's first heartbeat in one statement, so a
// generation is never without a holder unless the server itself fails in between. No IF NOT
// EXISTS: the statement fails for every contender but one. (18.16 cannot combine a column
// list with AS SELECT, so the casts type the columns.)
func createQuery(job string, gen uint64, h lease.Holder, ttl time.Duration) schema.Query {
	return schema.Query{Name: "lease.create", Kind: schema.KindExec,
		SQL: "CREATE TABLE " + tableName(job, gen) + "{on_cluster}\nENGINE = {engine:MergeTree} ORDER BY at_ms\n" +
			"AS SELECT toString(?) AS host, toUInt64(?) AS pid, toString(?) AS run_id, toUInt64(now()) * 1000 AS at_ms,\n" +
			"    toUInt64(?) AS ttl_ms, toUInt8(0) AS released",
		Args: []any{h.Host, uint64(h.PID), h.RunID, uint64(ttl.Milliseconds())}}
}

// heartbeatQuery records a heartbeat (or, released, the release) of generation gen at the
// server's time.
func heartbeatQuery(job string, gen uint64, h lease.Holder, ttl time.Duration, released bool) schema.Query {
	name, rel := "lease.heartbeat", 0
	if released {
		name, rel = "lease.release", 1
	}
	return schema.Query{Name: name, Kind: schema.KindExec,
		SQL: "INSERT INTO " + tableName(job, gen) + " (host, pid, run_id, at_ms, ttl_ms, released)\n" +
			"SELECT toString(?), toUInt64(?), toString(?), toUInt64(now()) * 1000, toUInt64(?), toUInt8(?)",
		Args: []any{h.Host, uint64(h.PID), h.RunID, uint64(ttl.Milliseconds()), rel}}
}

// stateQuery sums up generation gen: its holder, first and last heartbeat, TTL, release, row
// count, and the server's time.
func stateQuery(job string, gen uint64) schema.Query {
	return schema.Query{Name: "lease.state", Kind: schema.KindSelect,
		SQL: "SELECT any(host), any(pid), any(run_id), min(at_ms), max(at_ms), argMax(ttl_ms, at_ms), max(released), count(),\n" +
			"    toUInt64(now()) * 1000\nFROM " + tableName(job, gen)}
}

// generationsQuery lists the tables that may be job's generations (the pattern's underscores
// match any character; Go keeps the exact names), with their creation and the server's time.
func generationsQuery(job string) schema.Query {
	return schema.Query{Name: "lease.generations", Kind: schema.KindSelect,
		SQL: "SELECT name, toUInt64(metadata_modification_time) * 1000, toUInt64(now()) * 1000\n" +
			"FROM system.tables\nWHERE database = '{db}' AND name LIKE ?",
		Args: []any{tablePrefix(job) + "%"}}
}

// dropQuery drops generation gen.
func dropQuery(job string, gen uint64) schema.Query {
	return schema.Query{Name: "lease.drop", Kind: schema.KindExec, SQL: "DROP TABLE IF EXISTS " + tableName(job, gen) + "{on_cluster}"}
}

// eventQuery appends one row to the lease history at the server's time.
func eventQuery(job string, gen uint64, kind string, h lease.Holder, ttl time.Duration, superseded string) schema.Query {
	return schema.Query{Name: "lease.event", Kind: schema.KindExec,
		SQL: "INSERT INTO {db}.lease_events (at, job, generation, event, host, pid, run_id, ttl_ms, superseded)\n" +
			"SELECT now(), toString(?), toUInt64(?), toString(?), toString(?), toUInt32(?), toString(?), toUInt64(?), toString(?)",
		Args: []any{job, gen, kind, h.Host, uint64(h.PID), h.RunID, uint64(ttl.Milliseconds()), superseded}}
}

// eventsQuery reads job's newest limit history rows.
func eventsQuery(job string, limit int) schema.Query {
	return schema.Query{Name: "lease.events", Kind: schema.KindSelect,
		SQL: "SELECT at, generation, toString(event), host, pid, run_id, ttl_ms, superseded\nFROM {db}.lease_events\n" +
			"WHERE job = ?\nORDER BY at DESC, generation DESC, event DESC\nLIMIT ?",
		Args: []any{job, limit}}
}

// Statements lists the backend's statements with sample arguments, in an order that runs on a
// migrated database, for the registry (schema/registry_test.go).
func Statements() []schema.Query {
	h := lease.Holder{Host: "host-sample", PID: 4242, RunID: "billing-20260101T000000Z-0000000000000000"}
	return []schema.Query{
		createQuery("sample", 1, h, time.Minute),
		heartbeatQuery("sample", 1, h, time.Minute, false),
		stateQuery("sample", 1),
		generationsQuery("sample"),
		eventQuery("sample", 1, lease.EventAcquired, h, time.Minute, ""),
		heartbeatQuery("sample", 1, h, time.Minute, true),
		eventsQuery("sample", 10),
		dropQuery("sample", 1),
	}
}
