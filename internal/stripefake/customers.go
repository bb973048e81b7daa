package stripefake

import "maps"

type customer struct {
	record
	Email, Name, Description string
	Metadata                 map[string]string
}

func (s *Server) routeCustomers() {
	fields := []string{"email", "name", "description", "metadata"}
	s.route("POST /v1/customers", fields, false, s.createCustomer)
	s.route("GET /v1/customers", []string{"email", "created"}, true, s.listCustomers)
	s.route("GET /v1/customers/{id}", nil, false, s.getCustomer)
	s.route("POST /v1/customers/{id}", fields, false, s.updateCustomer)
	s.route("DELETE /v1/customers/{id}", nil, false, s.deleteCustomer)
}

func (s *Server) createCustomer(c *call) (any, *apiError) {
	id, seq := s.nextID("cus")
	cu := &customer{record: record{ID: id, Created: c.now.Unix(), seq: seq}, Metadata: map[string]string{}}
	if err := s.setCustomerFields(cu, c); err != nil {
		return nil, err
	}
	s.customers[id] = cu
	return customerJSON(cu), nil
}

func (s *Server) setCustomerFields(cu *customer, c *call) *apiError {
	if v, ok := c.form["email"]; ok {
		cu.Email = v[len(v)-1]
	}
	if v, ok := c.form["name"]; ok {
		cu.Name = v[len(v)-1]
	}
	if v, ok := c.form["description"]; ok {
		cu.Description = v[len(v)-1]
	}
	return applyMetadata(cu.Metadata, c.form)
}

// byPathID returns the object of m named by the request's {id}, or Stripe's resource_missing
// error naming object.
func byPathID[T any](c *call, m map[string]T, object string) (T, *apiError) {
	id := c.r.PathValue("id")
	v, ok := m[id]
	if !ok {
		var zero T
		return zero, noSuch(object, "id", id)
	}
	return v, nil
}

func (s *Server) customer(c *call) (*customer, *apiError) {
	cu, err := byPathID(c, s.customers, "customer")
	if err != nil {
		return nil, err
	}
	return cu, nil
}

func (s *Server) getCustomer(c *call) (any, *apiError) {
	cu, err := s.customer(c)
	if err != nil {
		return nil, err
	}
	return customerJSON(cu), nil
}

func (s *Server) updateCustomer(c *call) (any, *apiError) {
	cu, err := s.customer(c)
	if err != nil {
		return nil, err
	}
	next := *cu
	next.Metadata = maps.Clone(cu.Metadata)
	if err := s.setCustomerFields(&next, c); err != nil {
		return nil, err
	}
	*cu = next
	return customerJSON(cu), nil
}

// deleteCustomer removes the customer and, as Stripe does, cancels its subscriptions at once.
func (s *Server) deleteCustomer(c *call) (any, *apiError) {
	cu, err := s.customer(c)
	if err != nil {
		return nil, err
	}
	for _, sub := range s.subscriptions {
		if sub.Customer == cu.ID && !sub.ended() {
			sub.cancel(c.now)
		}
	}
	delete(s.customers, cu.ID)
	return map[string]any{"id": cu.ID, "object": "customer", "deleted": true}, nil
}

func (s *Server) listCustomers(c *call) (any, *apiError) {
	email := c.form.Get("email")
	var out []*customer
	for _, cu := range s.customers {
		if email == "" || cu.Email == email {
			out = append(out, cu)
		}
	}
	return paginate(c, out, "customer", "/v1/customers", func(cu *customer) any { return customerJSON(cu) })
}

func customerJSON(cu *customer) map[string]any {
	return map[string]any{
		"id": cu.ID, "object": "customer", "created": cu.Created, "livemode": false,
		"email": nullable(cu.Email), "name": nullable(cu.Name), "description": nullable(cu.Description),
		"metadata": maps.Clone(cu.Metadata),
	}
}

// nullable renders an empty string as JSON null, as Stripe does for unset text.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullableTime renders a zero Unix time as JSON null.
func nullableTime(t int64) any {
	if t == 0 {
		return nil
	}
	return t
}
