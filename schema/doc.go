// Package schema owns neonmeter's ClickHouse storage: the connection, the numbered migrations
// that create every table, and the catalog of every SQL statement the product runs.
//
// Every statement must run unchanged on ClickHouse 18.16 (the CI server) and on current
// ClickHouse (checked through chDB), so the SQL sticks to the subset both accept: new-style
// MergeTree DDL, ReplacingMergeTree with FINAL reads, monthly partitions dropped by hand (18.16
// has no TTL), client-side ? binding (18.16 has no server-side parameters), and batch inserts
// that name their columns.
//
// All SQL names its tables fully qualified ({db}.table), so a connection's default database
// never matters: Open can connect before the neonmeter database exists, Migrate creates it, and
// tests use a fresh database per test on one connection.
//
// On a ClickHouse cluster (Options.Cluster) the same statements render with ON CLUSTER and
// Replicated engines (sqltext.go): Open returns a connection that carries the cluster and its
// shape, and every Query run through it renders for it. On a cluster of several shards the
// tables that grow with usage (shardKey: usage by project, the billing ledger by customer)
// become a local table per shard behind a Distributed table of the old name, so statements
// still name the table; every other table is whole on every server, so no statement needs
// GLOBAL; migrations' ALTERs of a split table go to its local table. Only migrations may
// create or alter a split table (one statement becomes several there).
//
// The data model (tables, units, versions, the usage_hourly contract) is described in
// docs/data-model.md.
package schema
