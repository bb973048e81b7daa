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
	// Empty means one server. Open checks that the server knows the cluster, that it has one
	// shard and that the server defines the {shard} and {replica} macros.
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
// for the cluster (ON CLUSTER, Replicated engines).
type clusterConn struct {
	driver.Conn
	cluster string
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
	if err := checkCluster(ctx, conn, o.Cluster); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	return clusterConn{Conn: conn, cluster: o.Cluster}, nil
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
// engines need: the cluster is defined, it has one shard (every table is kept whole on each
// replica; see docs/operations.md), and the server's macros name its shard and replica.
func checkCluster(ctx context.Context, conn driver.Conn, cluster string) error {
	if !ValidCluster(cluster) {
		return fmt.Errorf("cluster name %q: must be letters, digits and underscores", cluster)
	}
	var hosts, shards, macros uint64
	err := clusterShapeQuery(cluster).Each(ctx, conn, "default", func(row Row) error { return row.Scan(&hosts, &shards, &macros) })
	switch {
	case err != nil:
		return fmt.Errorf("cluster %s: %w", cluster, err)
	case hosts == 0:
		return fmt.Errorf("cluster %s is not among the server's clusters (system.clusters, from <remote_servers>)", cluster)
	case shards != 1:
		return fmt.Errorf("cluster %s has %d shards: neonmeter keeps every table whole on each replica and needs one shard", cluster, shards)
	case macros != 2:
		return fmt.Errorf("cluster %s: the server must define the macros shard and replica (<macros>) for replicated tables", cluster)
	}
	return nil
}

// clusterShapeQuery counts the cluster's hosts and shards and the server's shard and replica
// macros.
func clusterShapeQuery(cluster string) Query {
	return Query{Name: "open.cluster_shape", Kind: KindSelect,
		SQL: "SELECT count(), uniqExact(shard_num), (SELECT count() FROM system.macros WHERE macro IN ('shard', 'replica'))\n" +
			"FROM system.clusters\nWHERE cluster = ?",
		Args: []any{cluster}}
}
