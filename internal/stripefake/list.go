package stripefake

import "sort"

// record is what every stored object has for lists: an id, a creation time and a sequence
// number that breaks ties between objects created in the same second.
type record struct {
	ID      string
	Created int64
	seq     int
}

func (r *record) rec() *record { return r }

type listable interface{ rec() *record }

// Stripe's list limits.
const (
	defaultLimit = 10
	maxLimit     = 100
)

// paginate returns one page of objs in Stripe's list order (newest first), honouring limit,
// starting_after and ending_before, rendered by render.
func paginate[T listable](c *call, objs []T, object, url string, render func(T) any) (any, *apiError) {
	limit := int64(defaultLimit)
	if n, ok, err := formInt(c.form, "limit"); err != nil {
		return nil, err
	} else if ok {
		if n < 1 || n > maxLimit {
			return nil, invalid("limit", "This value must be greater than or equal to 1 and less than or equal to %d.", maxLimit)
		}
		limit = n
	}
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i].rec(), objs[j].rec()
		if a.Created != b.Created {
			return a.Created > b.Created
		}
		return a.seq > b.seq
	})
	find := func(param string) (int, *apiError) {
		id := c.form.Get(param)
		for i, o := range objs {
			if o.rec().ID == id {
				return i, nil
			}
		}
		return 0, invalid(param, "No such %s: '%s'", object, id)
	}
	var from, to int
	hasMore := false
	switch {
	case c.form.Get("starting_after") != "" && c.form.Get("ending_before") != "":
		return nil, invalid("starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
	case c.form.Get("starting_after") != "":
		i, err := find("starting_after")
		if err != nil {
			return nil, err
		}
		from = i + 1
		to = min(len(objs), from+int(limit))
		hasMore = to < len(objs)
	case c.form.Get("ending_before") != "":
		i, err := find("ending_before")
		if err != nil {
			return nil, err
		}
		to = i
		from = max(0, to-int(limit))
		hasMore = from > 0
	default:
		to = min(len(objs), int(limit))
		hasMore = to < len(objs)
	}
	data := make([]any, 0, to-from)
	for _, o := range objs[from:to] {
		data = append(data, render(o))
	}
	return listJSON(url, data, hasMore), nil
}

func listJSON(url string, data []any, hasMore bool) map[string]any {
	return map[string]any{"object": "list", "url": url, "has_more": hasMore, "data": data}
}
