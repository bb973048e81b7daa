package schema

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDialTimeout is the dial timeout Open uses when Options.DialTimeout is zero.
const DefaultDialTimeout = 10 * time.Second

// Options say where and how to connect to ClickHouse.
type Options struct {
	// Addr is the native-protocol address, host:port (9000 by default on a server; the HTTP
	// protocol does not work with 18.16).
	Addr string
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
	return conn, err
}

// codeUnknownDatabase is ClickHouse's UNKNOWN_DATABASE error code.
const codeUnknownDatabase = 81

func open(ctx context.Context, o Options) (driver.Conn, error) {
	if o.Addr == "" {
		return nil, fmt.Errorf("clickhouse: no address")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	opts := &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{o.Addr},
		Auth: clickhouse.Auth{
			Database: o.Database,
			Username: o.User,
			Password: o.Password,
		},
		DialTimeout: o.DialTimeout,
	}
	if o.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
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
