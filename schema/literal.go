package schema

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Literal renders the statement for database db with its arguments written in as SQL
// literals, for people to read or paste into clickhouse-client. Strings, integers and times
// only; the product itself always binds arguments.
func (q Query) Literal(db string) (string, error) {
	text, err := q.Text(db)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	args := q.Args
	for _, part := range strings.SplitAfter(text, "?") {
		if !strings.HasSuffix(part, "?") {
			b.WriteString(part)
			continue
		}
		if len(args) == 0 {
			return "", fmt.Errorf("query %s: more placeholders than arguments", q.Name)
		}
		lit, err := literal(args[0])
		if err != nil {
			return "", fmt.Errorf("query %s: %w", q.Name, err)
		}
		b.WriteString(strings.TrimSuffix(part, "?") + lit)
		args = args[1:]
	}
	if len(args) != 0 {
		return "", fmt.Errorf("query %s: %d arguments left over", q.Name, len(args))
	}
	return b.String(), nil
}

func literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'", nil
	case time.Time:
		return "toDateTime('" + v.UTC().Format(time.DateTime) + "', 'UTC')", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	}
	return "", fmt.Errorf("no literal form for %T", v)
}
