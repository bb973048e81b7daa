package stripefake

import (
	"maps"
	"strconv"
)

type price struct {
	record
	Product    string
	Currency   string
	UnitAmount *int64
	LookupKey  string
	Nickname   string
	Active     bool
	Recurring  *recurring
	Metadata   map[string]string
}

type recurring struct {
	Interval       string
	IntervalCount  int64
	UsageType      string
	AggregateUsage string
	Meter          string
}

func (s *Server) routePrices() {
	s.route("POST /v1/prices", []string{"currency", "product", "product_data", "unit_amount", "unit_amount_decimal",
		"lookup_key", "transfer_lookup_key", "nickname", "active", "recurring", "billing_scheme", "metadata"}, false, s.createPrice)
	s.route("GET /v1/prices", []string{"active", "currency", "lookup_keys", "product", "type", "created"}, true, s.listPrices)
	s.route("GET /v1/prices/{id}", nil, false, s.getPrice)
}

func (s *Server) createPrice(c *call) (any, *apiError) {
	if c.form.Get("currency") == "" {
		return nil, missing("currency")
	}
	prodID := c.form.Get("product")
	switch {
	case prodID != "":
		if _, err := s.product(prodID); err != nil {
			return nil, noSuch("product", "product", prodID)
		}
	case c.form.Get("product_data[name]") != "":
		id, seq := s.nextID("prod")
		s.products[id] = &product{record: record{ID: id, Created: c.now.Unix(), seq: seq}, Name: c.form.Get("product_data[name]"),
			Active: true, Metadata: formMap(c.form, "product_data[metadata]")}
		prodID = id
	default:
		return nil, missing("product")
	}
	id, seq := s.nextID("price")
	p := &price{record: record{ID: id, Created: c.now.Unix(), seq: seq}, Product: prodID, Currency: c.form.Get("currency"),
		LookupKey: c.form.Get("lookup_key"), Nickname: c.form.Get("nickname"), Active: true, Metadata: map[string]string{}}
	if n, ok, err := formInt(c.form, "unit_amount"); err != nil {
		return nil, err
	} else if ok {
		p.UnitAmount = &n
	}
	if b, ok, err := formBool(c.form, "active"); err != nil {
		return nil, err
	} else if ok {
		p.Active = b
	}
	if iv := c.form.Get("recurring[interval]"); iv != "" {
		switch iv {
		case "day", "week", "month", "year":
		default:
			return nil, invalid("recurring[interval]", "Invalid recurring[interval]: must be one of day, week, month, or year")
		}
		r := &recurring{Interval: iv, IntervalCount: 1, UsageType: "licensed",
			AggregateUsage: c.form.Get("recurring[aggregate_usage]"), Meter: c.form.Get("recurring[meter]")}
		if ut := c.form.Get("recurring[usage_type]"); ut != "" {
			if ut != "licensed" && ut != "metered" {
				return nil, invalid("recurring[usage_type]", "Invalid recurring[usage_type]: must be one of licensed or metered")
			}
			r.UsageType = ut
		}
		if n, ok, err := formInt(c.form, "recurring[interval_count]"); err != nil {
			return nil, err
		} else if ok {
			r.IntervalCount = n
		}
		if r.UsageType == "metered" && r.AggregateUsage == "" {
			r.AggregateUsage = "sum"
		}
		p.Recurring = r
	}
	if p.LookupKey != "" {
		transfer, _, err := formBool(c.form, "transfer_lookup_key")
		if err != nil {
			return nil, err
		}
		for _, other := range s.prices {
			if other.LookupKey != p.LookupKey {
				continue
			}
			if !transfer {
				return nil, invalid("lookup_key", "A price (`%s`) already uses that lookup key.", other.ID)
			}
			other.LookupKey = ""
		}
	}
	if err := applyMetadata(p.Metadata, c.form); err != nil {
		return nil, err
	}
	s.prices[id] = p
	return priceJSON(p), nil
}

func (s *Server) getPrice(c *call) (any, *apiError) {
	p, err := byPathID(c, s.prices, "price")
	if err != nil {
		return nil, err
	}
	return priceJSON(p), nil
}

func (s *Server) listPrices(c *call) (any, *apiError) {
	active, filterActive, err := formBool(c.form, "active")
	if err != nil {
		return nil, err
	}
	keys := formSet(c.form, "lookup_keys")
	prod := c.form.Get("product")
	var out []*price
	for _, p := range s.prices {
		if (filterActive && p.Active != active) || (prod != "" && p.Product != prod) || (len(keys) > 0 && !keys[p.LookupKey]) {
			continue
		}
		out = append(out, p)
	}
	return paginate(c, out, "price", "/v1/prices", func(p *price) any { return priceJSON(p) })
}

func priceJSON(p *price) map[string]any {
	out := map[string]any{
		"id": p.ID, "object": "price", "created": p.Created, "livemode": false, "active": p.Active,
		"currency": p.Currency, "product": p.Product, "lookup_key": nullable(p.LookupKey), "nickname": nullable(p.Nickname),
		"metadata": maps.Clone(p.Metadata), "billing_scheme": "per_unit", "type": "one_time",
		"unit_amount": nil, "unit_amount_decimal": nil, "recurring": nil,
	}
	if p.UnitAmount != nil {
		out["unit_amount"] = *p.UnitAmount
		out["unit_amount_decimal"] = strconv.FormatInt(*p.UnitAmount, 10)
	}
	if r := p.Recurring; r != nil {
		out["type"] = "recurring"
		out["recurring"] = map[string]any{"interval": r.Interval, "interval_count": r.IntervalCount,
			"usage_type": r.UsageType, "aggregate_usage": nullable(r.AggregateUsage), "meter": nullable(r.Meter),
			"trial_period_days": nil}
	}
	return out
}
