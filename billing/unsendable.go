package billing

import (
	"context"

	"github.com/neonmeter/neonmeter/internal/logkey"
)

// Checker is a Sink that can tell, without sending, whether a held value (ledger status
// unsendable) now has somewhere to go. StripeSink looks for the customer's subscription item on
// the legacy price, so a held value is sent again once the subscription changes. A sink without
// it keeps held values held (an operator's `billing reconcile --repair` re-sends them).
type Checker interface {
	Sendable(ctx context.Context, customerID, target string, sink SinkKind) (bool, error)
}

// release turns the held actions whose (customer, target) the sink now accepts into sends of
// their new revision, asking once per pair; the others stay held, write nothing and are counted.
func (c *cycle) release(ctx context.Context, actions []Action) (out []Action, held int) {
	chk, _ := c.p.cfg.Sink.(Checker)
	verdict := map[queueKey]bool{}
	for _, a := range actions {
		if a.Kind != ActionHold {
			out = append(out, a)
			continue
		}
		k := queueKey{a.CustomerID, a.Target, a.Sink}
		ok, asked := verdict[k]
		if !asked && chk != nil {
			ok = c.sendable(ctx, chk, k)
			verdict[k] = ok
		}
		if !ok {
			held++
			continue
		}
		a.Kind = ActionSend
		out = append(out, a)
	}
	return out, held
}

// sendable asks the sink about one pair at the API pace; a failed question keeps it held.
func (c *cycle) sendable(ctx context.Context, chk Checker, k queueKey) bool {
	if err := c.p.apiPacer.Wait(ctx); err != nil {
		return false
	}
	ok, err := chk.Sendable(ctx, k.customer, k.target, k.sink)
	if err != nil {
		c.log.Warn("could not check whether held values can be sent; they stay held", logkey.CustomerID, k.customer, logkey.Target, k.target, logkey.Err, err)
	}
	return ok && err == nil
}
