package schema

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDialTimeout is the dial timeout Open uses when Options.DialTimeout is zero.
const DefaultDialTimeout = 10 * time.Second

// Options say where and how to connect to ClickHouse.
type Options struct {
	// Addr is the native-protocol address, host:port (9000 by default on a server; the HTTP
	// protocol does not work with 18.16), or the addresses of several replicas of Cluster
	// separated by commas. Connections go to the first that answers, in the order given, so
	// reads see the writes before them; a replica that refuses or does not answer within its
	// share of DialTimeout is passed over until it answers again.
	Addr string
	// Cluster is the ClickHouse cluster (a name in the servers' <remote_servers>) whose
	// replicas keep the database: DDL runs ON CLUSTER and tables are Replicated*MergeTree.
	// Empty means one server. Open checks that the server knows the cluster and defines the
	// {shard} and {replica} macros. On a cluster of several shards the tables that grow with
	// usage are split across the shards behind Distributed tables (docs/operations.md).
	Cluster string
	// Database is the connection's default database, normally the neonmeter database. Every
	// statement of this package names its database explicitly, so while it does not exist yet
	// (before the first Migrate) Open connects to the server's default database instead.
	Database string
	User     string
	Password string
	// TLS connects over TLS with the system's roots.
	TLS bool
	// DialTimeout bounds connecting; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// settings are the session settings, set by Open for a sharded cluster.
	settings clickhouse.Settings
}

// SplitAddrs splits a comma-separated list of host:port addresses, naming the first bad one.
func SplitAddrs(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return nil, fmt.Errorf("address %q: must be host:port", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("address %q: port must be a number from 1 to 65535", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("address %q: listed twice", a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// clusterConn is a connection to the replicas of a cluster: statements run through it render
// for the cluster (ON CLUSTER, Replicated engines; sharded: local and Distributed tables).
type clusterConn struct {
	driver.Conn
	cluster string
	sharded bool
}

// placeOf is where statements run through conn in database db run.
func placeOf(conn driver.Conn, db string) place {
	if c, ok := conn.(clusterConn); ok {
		return place{db: db, cluster: c.cluster, sharded: c.sharded}
	}
	return place{db: db}
}

// Sharded reports whether conn was opened by Open for a cluster of several shards.
func Sharded(conn driver.Conn) bool {
	c, ok := conn.(clusterConn)
	return ok && c.sharded
}

// ClusterOf returns the cluster conn was opened for by Open; empty for one server.
func ClusterOf(conn driver.Conn) string {
	if c, ok := conn.(clusterConn); ok {
		return c.cluster
	}
	return ""
}

// Open connects to ClickHouse over the native protocol and pings it. Errors name the address,
// never the password.
//
// If o.Database does not exist yet, Open falls back to the server's default database: all SQL
// of this package is fully qualified, so the same connection can run Migrate, which creates the
// database, and everything after it.
func Open(ctx context.Context, o Options) (driver.Conn, error) {
	conn, err := open(ctx, o)
	var ex *clickhouse.Exception
	if o.Database != "" && errors.As(err, &ex) && ex.Code == codeUnknownDatabase {
		o.Database = ""
		conn, err = open(ctx, o)
	}
	if err != nil || o.Cluster == "" {
		return conn, err
	}
	shards, err := checkCluster(ctx, conn, o.Cluster)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	if shards == 1 {
		return clusterConn{Conn: conn, cluster: o.Cluster}, nil
	}
	// Several shards: connect again with the settings of Distributed tables (shardedSettings).
	conn.Close()
	o.settings = shardedSettings()
	if conn, err = open(ctx, o); err != nil {
		return nil, err
	}
	return clusterConn{Conn: conn, cluster: o.Cluster, sharded: true}, nil
}

// shardedSettings are the session settings of a connection to a sharded cluster, for its
// Distributed tables. insert_distributed_sync: an INSERT returns once every shard has its
// rows (the default queues them and returns), so a write is read back at once, a failed one
// fails, and a retried block is deduplicated by the shard's replicated table.
// prefer_localhost_replica 0: the server's own shard is reached like the others (the first
// replica that answers, as load_balancing in_order says); through the local shortcut
// ClickHouse 18.16 fails a FINAL read of a Distributed table ordered without every key column
// selected ("Cannot find column … in source stream"). 18.16's protocol carries only numeric
// settings, so load_balancing comes from the user's profile (checkCluster).
func shardedSettings() clickhouse.Settings {
	return clickhouse.Settings{"insert_distributed_sync": 1, "prefer_localhost_replica": 0}
}

// codeUnknownDatabase is ClickHouse's UNKNOWN_DATABASE error code.
const codeUnknownDatabase = 81

func open(ctx context.Context, o Options) (driver.Conn, error) {
	if o.Addr == "" {
		return nil, fmt.Errorf("clickhouse: no address")
	}
	addrs, err := SplitAddrs(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if len(addrs) > 1 && o.Cluster == "" {
		return nil, fmt.Errorf("clickhouse %s: several addresses are the replicas of a cluster: name it", o.Addr)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	opts := &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     addrs,
		Auth: clickhouse.Auth{
			Database: o.Database,
			Username: o.User,
			Password: o.Password,
		},
		Settings:         o.settings,
		DialTimeout:      o.DialTimeout,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		DialContext:      dialer(o, len(addrs)),
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: open: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: ping: %w", o.Addr, err)
	}
	return conn, nil
}

// dialer connects to one address, giving each of n addresses an equal share of the dial
// timeout (at least a second): a replica that swallows packets must not use up the time the
// next one needs. clickhouse-go's own dialer gives each address the whole timeout.
func dialer(o Options, n int) func(ctx context.Context, addr string) (net.Conn, error) {
	share := max(o.DialTimeout/time.Duration(n), time.Second)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, share)
		defer cancel()
		d := &net.Dialer{Timeout: share}
		if !o.TLS {
			return d.DialContext(ctx, "tcp", addr)
		}
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{MinVersion: tls.VersionTLS12}}
		return td.DialContext(ctx, "tcp", addr)
	}
}

// checkCluster checks, on the server conn reached, what the cluster's DDL and Replicated
// engines need, and returns the number of shards: the cluster is defined, the server's macros
// name its shard and replica, and the server is one of the cluster's hosts (a sharded table's
// rows are routed by the servers' own <remote_servers>), and on several shards the user's
// profile sets load_balancing to in_order: each shard is written and read on its first replica
// that answers, the same for every server, so reads see the writes before them.
func checkCluster(ctx context.Context, conn driver.Conn, cluster string) (int, error) {
	if !ValidCluster(cluster) {
		return 0, fmt.Errorf("cluster name %q: must be letters, digits and underscores", cluster)
	}
	var (
		hosts, shards, local, macros uint64
		balancing                    string
	)
	err := clusterShapeQuery(cluster).Each(ctx, conn, "default", func(row Row) error {
		return row.Scan(&hosts, &shards, &local, &macros, &balancing)
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("cluster %s: %w", cluster, err)
	case hosts == 0:
		return 0, fmt.Errorf("cluster %s is not among the server's clusters (system.clusters, from <remote_servers>)", cluster)
	case macros != 2:
		return 0, fmt.Errorf("cluster %s: the server must define the macros shard and replica (<macros>) for replicated tables", cluster)
	case shards > 1 && local == 0:
		return 0, fmt.Errorf("cluster %s: the server is not one of its hosts: connect to the cluster's own servers", cluster)
	case shards > 1 && balancing != "in_order":
		return 0, fmt.Errorf("cluster %s has %d shards: set load_balancing to in_order in the user's settings profile (it is %s), so every server reads a shard where it was written", cluster, shards, balancing)
	}
	return int(shards), nil
}

// clusterShapeQuery counts the cluster's hosts and shards, the shards this server is a host of,
// and the server's shard and replica macros, and reads the session's load_balancing.
func clusterShapeQuery(cluster string) Query {
	return Query{Name: "open.cluster_shape", Kind: KindSelect,
		SQL: "SELECT sum(replicas), count(), sum(local),\n" +
			"    (SELECT count() FROM system.macros WHERE macro IN ('shard', 'replica')),\n" +
			"    (SELECT value FROM system.settings WHERE name = 'load_balancing')\n" +
			"FROM (SELECT shard_num, count() AS replicas, max(is_local) AS local FROM system.clusters WHERE cluster = ? GROUP BY shard_num)",
		Args: []any{cluster}}
}
