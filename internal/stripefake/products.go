package stripefake

import "maps"

type product struct {
	record
	Name        string
	Description string
	Active      bool
	Metadata    map[string]string
}

func (s *Server) routeProducts() {
	fields := []string{"name", "description", "active", "metadata"}
	s.route("POST /v1/products", append(fields, "id"), false, s.createProduct)
	s.route("GET /v1/products", []string{"active", "ids", "created"}, true, s.listProducts)
	s.route("GET /v1/products/{id}", nil, false, s.getProduct)
	s.route("POST /v1/products/{id}", fields, false, s.updateProduct)
}

func (s *Server) createProduct(c *call) (any, *apiError) {
	if c.form.Get("name") == "" {
		return nil, missing("name")
	}
	id, seq := s.nextID("prod")
	if custom := c.form.Get("id"); custom != "" {
		if _, taken := s.products[custom]; taken {
			return nil, invalid("id", "Product already exists.")
		}
		id = custom
	}
	p := &product{record: record{ID: id, Created: c.now.Unix(), seq: seq}, Active: true, Metadata: map[string]string{}}
	if err := setProductFields(p, c); err != nil {
		return nil, err
	}
	s.products[id] = p
	return productJSON(p), nil
}

func setProductFields(p *product, c *call) *apiError {
	if v, ok := c.form["name"]; ok {
		p.Name = v[len(v)-1]
	}
	if v, ok := c.form["description"]; ok {
		p.Description = v[len(v)-1]
	}
	if b, ok, err := formBool(c.form, "active"); err != nil {
		return err
	} else if ok {
		p.Active = b
	}
	return applyMetadata(p.Metadata, c.form)
}

func (s *Server) product(id string) (*product, *apiError) {
	p, ok := s.products[id]
	if !ok {
		return nil, noSuch("product", "id", id)
	}
	return p, nil
}

func (s *Server) getProduct(c *call) (any, *apiError) {
	p, err := s.product(c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return productJSON(p), nil
}

func (s *Server) updateProduct(c *call) (any, *apiError) {
	p, err := s.product(c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	next := *p
	next.Metadata = maps.Clone(p.Metadata)
	if err := setProductFields(&next, c); err != nil {
		return nil, err
	}
	*p = next
	return productJSON(p), nil
}

func (s *Server) listProducts(c *call) (any, *apiError) {
	active, filter, err := formBool(c.form, "active")
	if err != nil {
		return nil, err
	}
	ids := formSet(c.form, "ids")
	var out []*product
	for _, p := range s.products {
		if (!filter || p.Active == active) && (len(ids) == 0 || ids[p.ID]) {
			out = append(out, p)
		}
	}
	return paginate(c, out, "product", "/v1/products", func(p *product) any { return productJSON(p) })
}

func productJSON(p *product) map[string]any {
	return map[string]any{
		"id": p.ID, "object": "product", "created": p.Created, "livemode": false,
		"name": p.Name, "description": nullable(p.Description), "active": p.Active,
		"metadata": maps.Clone(p.Metadata), "type": "service",
	}
}
