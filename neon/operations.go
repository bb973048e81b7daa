package neon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// OperationStatus is the status of a Neon operation.
type OperationStatus string

// Operation statuses. Terminal: finished, skipped, cancelled (ok) and error (failure). failed is
// not terminal: Neon retries it while failures_count grows.
const (
	OperationScheduling OperationStatus = "scheduling"
	OperationRunning    OperationStatus = "running"
	OperationFinished   OperationStatus = "finished"
	OperationFailed     OperationStatus = "failed"
	OperationError      OperationStatus = "error"
	OperationCancelling OperationStatus = "cancelling"
	OperationCancelled  OperationStatus = "cancelled"
	OperationSkipped    OperationStatus = "skipped"
)

// Done reports whether the operation ended without error.
func (s OperationStatus) Done() bool {
	return s == OperationFinished || s == OperationSkipped || s == OperationCancelled
}

// Operation is an asynchronous change Neon applies to a project (start_compute,
// suspend_compute, apply_config, …).
type Operation struct {
	ID, ProjectID, BranchID, EndpointID string
	Action                              string
	Status                              OperationStatus
	Error                               string
	FailuresCount                       int
	RetryAt, CreatedAt, UpdatedAt       time.Time
	TotalDurationMS                     int64
}

type wireOperation struct {
	ID              string          `json:"id"`
	ProjectID       string          `json:"project_id"`
	BranchID        string          `json:"branch_id"`
	EndpointID      string          `json:"endpoint_id"`
	Action          string          `json:"action"`
	Status          OperationStatus `json:"status"`
	Error           string          `json:"error"`
	FailuresCount   int             `json:"failures_count"`
	RetryAt         time.Time       `json:"retry_at"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	TotalDurationMS int64           `json:"total_duration_ms"`
}

// operations checks and converts the operations a mutation started.
func operations(ws []wireOperation) ([]Operation, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]Operation, len(ws))
	for i := range ws {
		if err := ws[i].check(); err != nil {
			return nil, err
		}
		out[i] = Operation(ws[i])
	}
	return out, nil
}

// maxOperationID bounds an operation id: GetOperation takes no longer one, so WaitOperations
// could never poll it.
const maxOperationID = 64

// check refuses an operation WaitOperations could not follow (no id, an id GetOperation refuses,
// no status) or with negative counts.
func (w *wireOperation) check() error {
	project := clip([]byte(w.ProjectID))
	switch {
	case w.ID == "" || len(w.ID) > maxOperationID:
		return &DecodeError{Project: project, Reason: fmt.Sprintf("operation id %q empty or longer than %d bytes", clip([]byte(w.ID)), maxOperationID)}
	case w.Status == "":
		return &DecodeError{Project: project, Reason: fmt.Sprintf("operation %s: status missing", clip([]byte(w.ID)))}
	case w.FailuresCount < 0 || w.TotalDurationMS < 0:
		return &DecodeError{Project: project, Reason: fmt.Sprintf("operation %s: failures_count %d or total_duration_ms %d is negative", clip([]byte(w.ID)), w.FailuresCount, w.TotalDurationMS)}
	}
	return nil
}

// GetOperation reads one operation.
func (c *Client) GetOperation(ctx context.Context, projectID, operationID string) (*Operation, error) {
	if !ValidID(projectID) || operationID == "" || len(operationID) > maxOperationID {
		return nil, fmt.Errorf("get operation: bad project id %q or operation id %q", projectID, operationID)
	}
	rq := &request{
		method: http.MethodGet, route: routeOperation,
		path: "/projects/" + projectID + "/operations/" + url.PathEscape(operationID), bucket: c.general, projectID: projectID,
	}
	var op Operation
	err := c.do(ctx, rq, func(body []byte) error {
		var w struct {
			Operation *wireOperation `json:"operation"`
		}
		if err := decodeJSON(body, "operation", &w); err != nil {
			return err
		}
		if w.Operation == nil || w.Operation.ID == "" || w.Operation.Status == "" {
			return &DecodeError{Project: projectID, Reason: "operation, its id or its status missing"}
		}
		if err := w.Operation.check(); err != nil {
			return err
		}
		op = Operation(*w.Operation)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get operation %s/%s: %w", projectID, operationID, err)
	}
	return &op, nil
}

// WaitOperations polls the given operations of a project every OperationPollInterval until all
// are done (finished, skipped or cancelled). An operation in status error fails the wait with
// ErrOperationFailed; failed means Neon is still retrying and is waited on. The wait is bounded
// by OperationTimeout (context.DeadlineExceeded).
func (c *Client) WaitOperations(ctx context.Context, projectID string, ops []Operation) error {
	var pending []Operation
	for _, op := range ops {
		if op.ProjectID != "" && op.ProjectID != projectID {
			return fmt.Errorf("wait operations %s: operation %s belongs to project %s", projectID, op.ID, op.ProjectID)
		}
		if err := opFailed(projectID, &op); err != nil {
			return err
		}
		if !op.Status.Done() {
			pending = append(pending, op)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	t := time.NewTicker(c.cfg.OperationPollInterval)
	defer t.Stop()
	for len(pending) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait operations %s: %d not done (first %s, %s): %w", projectID, len(pending), pending[0].ID, pending[0].Status, ctx.Err())
		case <-t.C:
		}
		still := pending[:0]
		for _, op := range pending {
			cur, err := c.GetOperation(ctx, projectID, op.ID)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
					return fmt.Errorf("wait operations %s: %d not done: %w", projectID, len(pending), ctx.Err())
				}
				return fmt.Errorf("wait operations: %w", err)
			}
			if err := opFailed(projectID, cur); err != nil {
				return err
			}
			if !cur.Status.Done() {
				still = append(still, *cur)
			}
		}
		pending = still
	}
	return nil
}

func opFailed(projectID string, op *Operation) error {
	if op.Status != OperationError {
		return nil
	}
	return fmt.Errorf("operation %s (%s) of project %s: %q: %w", op.ID, op.Action, projectID, op.Error, ErrOperationFailed)
}
