package schema

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestAlreadyExists(t *testing.T) {
	tests := []struct {
		ex   clickhouse.Exception
		want bool
	}{
		{clickhouse.Exception{Code: 57, Message: "Table db.t already exists."}, true},
		{clickhouse.Exception{Code: 82, Message: "Database db already exists."}, true},
		{clickhouse.Exception{Code: 15, Message: "Column with name region already exists"}, true},
		{clickhouse.Exception{Code: 44, Message: "Cannot add column region: column with this name already exists"}, true},
		{clickhouse.Exception{Code: 44, Message: "Sorting key cannot contain nullable columns"}, false},
		{clickhouse.Exception{Code: 62, Message: "Syntax error"}, false},
		{clickhouse.Exception{Code: 81, Message: "Database db doesn't exist"}, false},
	}
	for _, tt := range tests {
		if got := alreadyExists(&tt.ex); got != tt.want {
			t.Errorf("code %d %q: already exists = %v, want %v", tt.ex.Code, tt.ex.Message, got, tt.want)
		}
	}
}
