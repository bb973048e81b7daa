package accounts

// Log keys.
const (
	keyComponent = "component"
	keyRunID     = "run_id"
	keyProject   = "project_id"
	keyCustomer  = "customer_id"
)
