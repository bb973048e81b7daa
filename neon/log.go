package neon

// Log keys of this package, matching the rest of neonmeter.
const (
	keyComponent = "component"
	keyRoute     = "route"
	keyAttempt   = "attempt"
	keyReason    = "reason"
	keyStatus    = "status"
	keyRequestID = "request_id"
	keyWait      = "wait"
)
