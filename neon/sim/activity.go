package sim

import (
	"fmt"
	"math"
)

// The fleet-scale activity model (Config.ActiveShare > 0) replaces the four profiles of small
// test fleets with three classes shaped like a big, mostly idle fleet:
//
//   - always-on: a compute runs every hour (a small share, alwaysOnPart of ActiveShare);
//   - diurnal: runs in an hour with probability diurnalRate × the fleet's daily curve;
//   - dormant: the rest, most of the fleet: runs in an hour with probability dormantRate × the
//     curve, about two hours a week, so most of them stay idle for days.
//
// The daily curve peaks at curvePeakHour UTC and dips twelve hours later by curveAmplitude of
// its mean, as a fleet whose owners share a few time zones does. The class shares are solved
// from ActiveShare so that the expected share of projects running in an hour, averaged over a
// day, is ActiveShare.
const (
	alwaysOnPart   = 0.15      // share of ActiveShare that is always on
	diurnalRate    = 0.30      // a diurnal project's hourly probability at the curve's mean
	dormantRate    = 2.0 / 168 // a dormant project's hourly probability at the curve's mean
	curveAmplitude = 0.30
	curvePeakHour  = 15
	// MaxActiveShare bounds Config.ActiveShare: above it the classes cannot reach the share
	// under the curve's peak.
	MaxActiveShare = 0.5
)

// Profiles of the fleet-scale model.
const (
	profileDormant = profileRunaway + 1 + iota
	profileDiurnal
	profileAlwaysOn
)

// activity holds the solved class shares and hourly rates of the fleet-scale model.
type activity struct {
	on                 bool
	alwaysOn, diurnal  float64 // class shares; dormant is the rest
	diurnalP, dormantP float64 // hourly probabilities at the curve's mean
	curve              [24]float64
}

// newActivity solves the class shares for share (0 = the model is off).
func newActivity(share float64) (activity, error) {
	if share == 0 {
		return activity{}, nil
	}
	if !(share > 0 && share <= MaxActiveShare) {
		return activity{}, fmt.Errorf("ActiveShare = %v: must be 0 (the profile mix of small fleets) or in (0, %v]", share, MaxActiveShare)
	}
	a := activity{on: true, alwaysOn: alwaysOnPart * share, diurnalP: diurnalRate, dormantP: dormantRate}
	rest := share - a.alwaysOn // what the diurnal and dormant classes contribute
	others := 1 - a.alwaysOn
	switch {
	case rest <= others*dormantRate: // a very quiet fleet: every other project is dormant
		a.dormantP = rest / others
	default:
		a.diurnal = (rest - others*dormantRate) / (diurnalRate - dormantRate)
		if a.diurnal > others { // a busy fleet: no dormant projects, diurnal ones run more
			a.diurnal, a.diurnalP = others, rest/others
		}
	}
	for h := range a.curve {
		a.curve[h] = 1 + curveAmplitude*math.Cos(2*math.Pi*float64(h-curvePeakHour)/24)
	}
	return a, nil
}

// class draws the profile of a project from x, uniform in [0, 1).
func (a *activity) class(x float64) uint8 {
	switch {
	case x < a.alwaysOn:
		return profileAlwaysOn
	case x < a.alwaysOn+a.diurnal:
		return profileDiurnal
	}
	return profileDormant
}

// runs reports whether a project of a fleet-scale profile runs in hour h, u being the
// hour's uniform draw.
func (a *activity) runs(profile uint8, h int64, u float64) bool {
	switch profile {
	case profileAlwaysOn:
		return true
	case profileDiurnal:
		return u < a.diurnalP*a.curve[floorMod(h, 24)]
	}
	return u < a.dormantP*a.curve[floorMod(h, 24)]
}

// seconds is how long a running project of a fleet-scale profile runs in the hour, v being
// the hour's second uniform draw.
func (a *activity) seconds(profile uint8, v float64) float64 {
	switch profile {
	case profileAlwaysOn:
		return 3600
	case profileDiurnal:
		return math.Floor(1200 + 2400*v)
	}
	return math.Floor(60 + 1740*v)
}

// fleetCU draws a fleet-scale project's compute size: small for dormant projects.
func fleetCU(profile uint8, logU func(k uint64, lo, hi float64) float64) float64 {
	switch profile {
	case profileDormant:
		return logU(1, 0.25, 1)
	case profileDiurnal:
		return logU(1, 0.25, 2)
	}
	return logU(1, 0.5, 4)
}
