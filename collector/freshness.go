package collector

import (
	"context"
	"fmt"
	"time"
)

// FreshnessQuery says whose freshness ReadFreshness reads.
type FreshnessQuery struct {
	Orgs []FleetOrg
	Now  time.Time
	// PeriodEnd and PeriodGrace as in FleetConfig: while a closed period's grace runs, the
	// closing tier is reported too.
	PeriodEnd   func(t time.Time) time.Time
	PeriodGrace time.Duration // default 1h
}

// ReadFreshness reads, from what cycles stored, the freshness of every org's tiers, for
// `neonmeter status` (the live values, from the cycle's own view of the fleet, are the
// metrics). Without Neon's project list it judges each tier by the progress rows updated in
// the last 168 hours (older rows are projects deleted since):
//   - rolling: every project; its oldest complete hour is the org's watermark, which each
//     cycle sets from the projects Neon listed;
//   - active: projects Neon saw active after their complete-through when they were last
//     collected, i.e. with activity still to collect;
//   - at_risk: the projects enforcement holds at risk now;
//   - closing (during a closed period's grace): projects not yet complete through its end.
func ReadFreshness(ctx context.Context, r FreshnessReader, q FreshnessQuery) ([]TierFreshness, error) {
	grace := q.PeriodGrace
	if grace <= 0 {
		grace = time.Hour
	}
	closing, isClosing := ClosingPeriodEnd(q.Now, q.PeriodEnd, grace)
	var out []TierFreshness
	for _, o := range q.Orgs {
		ep := o.Endpoint
		if ep == "" {
			ep = EndpointV2
		}
		wm, hasWM, err := r.Watermark(ctx, Feed{OrgID: o.ID, Endpoint: ep, Granularity: GranularityHourly})
		if err != nil {
			return nil, fmt.Errorf("freshness of org %s: %w", o.ID, err)
		}
		st, err := r.StoredTiers(ctx, o.ID, q.Now.Add(-HourlyWindow), closing)
		if err != nil {
			return nil, fmt.Errorf("freshness of org %s: %w", o.ID, err)
		}
		if hasWM {
			st.AllOldest = wm
		}
		tiers := []TierFreshness{
			{Tier: TierActive, Projects: st.Active, Oldest: st.ActiveOldest},
			{Tier: TierAtRisk, Projects: st.AtRisk, Oldest: st.AtRiskOldest},
			{Tier: TierRolling, Projects: st.All, Oldest: st.AllOldest},
		}
		if isClosing {
			tiers = append([]TierFreshness{{Tier: TierClosing, Projects: st.Closing, Oldest: st.ClosingOldest}}, tiers...)
		}
		for _, t := range tiers {
			t.OrgID = o.ID
			if t.Projects > 0 || (t.Tier == TierRolling && hasWM) {
				t.Age = q.Now.Sub(t.Oldest)
			}
			out = append(out, t)
		}
	}
	return out, nil
}
