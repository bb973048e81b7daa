package schema

import "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

// Tables is one database on one connection: what a stage's store runs its statements in. Every
// stage's chstore.Store embeds it and hands Conn and DB to Query's run helpers.
type Tables struct {
	Conn driver.Conn
	DB   string
}

// NewTables returns database db on conn.
func NewTables(conn driver.Conn, db string) Tables { return Tables{Conn: conn, DB: db} }
