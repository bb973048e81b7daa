package accounts

import (
	"context"
	"time"
)

// Source says which input recorded a change: the value of account_history.source.
type Source string

const (
	// SourceStripe records come from a Stripe sync.
	SourceStripe Source = "stripe"
	// SourceCSV records come from an imported file.
	SourceCSV Source = "csv"
)

// Valid reports whether s is one of the sources account_history accepts.
func (s Source) Valid() bool { return s == SourceStripe || s == SourceCSV }

// Record is a change of a project's account as recorded in account_history: from ValidFrom
// on, ProjectID belongs to CustomerID on Plan, until the project's next record. (Change is
// the same state change before it is recorded.)
type Record struct {
	ProjectID string
	// ValidFrom is when the change took effect (stored to the second, UTC).
	ValidFrom time.Time
	// CustomerID is the Stripe customer (cus_…); empty when the project belongs to no one.
	CustomerID string
	// Plan is the catalog plan in force; empty when the customer has none (the default applies).
	Plan   string
	Source Source
	// SubscriptionID is the Stripe subscription that set the plan, if any.
	SubscriptionID string
	// Basis names where ValidFrom came from.
	Basis Basis
	// RecordedAt is when neonmeter wrote the row.
	RecordedAt time.Time
	RunID      string
	// Version orders rewrites of the same (project, valid_from): the highest wins.
	Version uint64
}

// Store is the account history accounts keeps, and the usage it checks for unowned projects.
// Billing and enforcement read the history through it too (LoadTimelines, AssignmentsAt).
type Store interface {
	// Insert writes records in one batch; none writes nothing. It refuses a record without a
	// project, a valid source or a time after 1970, writing nothing.
	Insert(ctx context.Context, records []Record) error
	// At returns, per project, the record in force at instant at: its latest with
	// ValidFrom <= at. Projects without one are absent. Nil projectIDs means every project.
	At(ctx context.Context, projectIDs []string, at time.Time) (map[string]Record, error)
	// History returns every record with ValidFrom < to of these projects (nil: of every
	// project), ordered by project and time.
	History(ctx context.Context, projectIDs []string, to time.Time) ([]Record, error)
	// UsageProjects returns the projects with hourly usage in [from, to), sorted.
	UsageProjects(ctx context.Context, from, to time.Time) ([]string, error)
}
