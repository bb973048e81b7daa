package billing

// Log keys.
const (
	keyComponent = "component"
	keyRunID     = "run_id"
	keyCustomer  = "customer_id"
	keyTarget    = "target"
	keyHour      = "hour"
)
