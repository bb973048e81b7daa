package schema

// Log keys used by this package, matching the rest of neonmeter.
const (
	keyComponent = "component"
	keyDatabase  = "database"
	keyTable     = "table"
	keyPartition = "partition"
)
