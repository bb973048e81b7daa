// Package logkey holds the structured-log keys of every package, so one thing is always logged
// under one name: a query over the logs for project_id finds it whichever stage wrote the line.
package logkey

const (
	Component  = "component" // the package or job writing the line
	RunID      = "run_id"    // a run of a job: sweep, sync, push, reconcile, enforcement cycle
	OrgID      = "org_id"
	ProjectID  = "project_id"
	CustomerID = "customer_id"
	Metric     = "metric"
	Hour       = "hour"
	Target     = "target" // a Stripe meter's event name or a legacy price id
	Err        = "err"
	Route      = "route"
	Attempt    = "attempt"
	Reason     = "reason"
	Status     = "status"
	RequestID  = "request_id"
	Wait       = "wait"
	Database   = "database"
	Table      = "table"
	Partition  = "partition"
	Step       = "step"
	Command    = "command"
	Job        = "job"        // a job that takes a lease: billing, enforcement, accounts, retention
	Generation = "generation" // a generation of a job's lease
	Host       = "host"       // the host of a process, e.g. the one that left a run abandoned
	PID        = "pid"
	Account    = "neon_account" // a Neon account (API key): "default" or the key file's path
)
