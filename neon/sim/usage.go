package sim

import (
	"math"
	"time"
)

// metric indexes the 8 v2 metrics followed by the 7 legacy ones.
type metric uint8

const (
	mComputeUnitSeconds metric = iota
	mRootBranchBytesMonth
	mChildBranchBytesMonth
	mInstantRestoreBytesMonth
	mPublicNetworkTransferBytes
	mPrivateNetworkTransferBytes
	mExtraBranchesMonth
	mSnapshotStorageBytesMonth
	mActiveTimeSeconds
	mComputeTimeSeconds
	mWrittenDataBytes
	mSyntheticStorageSizeBytes
	mDataStorageBytesHour
	mLogicalSizeBytes
	mLogicalSizeBytesHour
	numMetrics

	firstLegacy = mActiveTimeSeconds
)

func (m metric) String() string {
	switch m {
	case mComputeUnitSeconds:
		return "compute_unit_seconds"
	case mRootBranchBytesMonth:
		return "root_branch_bytes_month"
	case mChildBranchBytesMonth:
		return "child_branch_bytes_month"
	case mInstantRestoreBytesMonth:
		return "instant_restore_bytes_month"
	case mPublicNetworkTransferBytes:
		return "public_network_transfer_bytes"
	case mPrivateNetworkTransferBytes:
		return "private_network_transfer_bytes"
	case mExtraBranchesMonth:
		return "extra_branches_month"
	case mSnapshotStorageBytesMonth:
		return "snapshot_storage_bytes_month"
	case mActiveTimeSeconds:
		return "active_time_seconds"
	case mComputeTimeSeconds:
		return "compute_time_seconds"
	case mWrittenDataBytes:
		return "written_data_bytes"
	case mSyntheticStorageSizeBytes:
		return "synthetic_storage_size_bytes"
	case mDataStorageBytesHour:
		return "data_storage_bytes_hour"
	case mLogicalSizeBytes:
		return "logical_size_bytes"
	case mLogicalSizeBytesHour:
		return "logical_size_bytes_hour"
	}
	return "unknown"
}

func metricByName(name string) (metric, bool) {
	for m := metric(0); m < numMetrics; m++ {
		if m.String() == name {
			return m, true
		}
	}
	return 0, false
}

func isLegacyMetric(m metric) bool { return m >= firstLegacy }

// activeSeconds is how long the project's primary compute runs in hour h, by profile: idle
// projects almost never, steady ones mostly in the owner's daytime, bursty ones at random,
// runaway ones always; the fleet-scale profiles follow Config.ActiveShare (activity.go).
func (s *Sim) activeSeconds(p *project, h int64) float64 {
	i, hh := uint64(p.idx), uint64(h)
	u := unit(s.rnd(i, hh, saltActive))
	v := func() float64 { return unit(s.rnd(i, hh, saltActiveLen)) } // drawn only when running
	switch p.profile {
	case profileIdle:
		if u < 0.03 {
			return math.Floor(60 + 540*v())
		}
	case profileSteady:
		local := h + int64(p.phase)
		hour, day := floorMod(local, 24), floorMod(floorDiv(local, 24)+4, 7) // 1970-01-01 was a Thursday
		pr := 0.25
		if hour >= 8 && hour < 20 {
			pr = 0.9
		}
		if day == 0 || day == 6 {
			pr *= 0.5
		}
		if u < pr {
			return math.Floor(1800 + 1800*v())
		}
	case profileBursty:
		if u < 0.25 {
			return math.Floor(300 + 3300*v())
		}
	case profileRunaway:
		return 3600
	default:
		if s.act.runs(p.profile, h, u) {
			return s.act.seconds(p.profile, v())
		}
	}
	return 0
}

// compute is how long the primary compute runs in hour h and at what size (cuCap: 0 = none; off:
// computes could not run).
func (s *Sim) compute(p *project, h int64, cuCap float64, off bool) (active, cu float64) {
	if !off {
		active = s.activeSeconds(p, h)
	}
	if active > 0 {
		cu = p.cu * (0.75 + 0.5*unit(s.rnd(uint64(p.idx), uint64(h), saltCU)))
		if cuCap > 0 && cu > cuCap {
			cu = cuCap
		}
	}
	return active, cu
}

// utilization is the share of its compute size the compute uses in hour h.
func (s *Sim) utilization(p *project, h int64) float64 {
	return 0.6 + 0.4*unit(s.rnd(uint64(p.idx), uint64(h), saltUtil))
}

// baseHour fills out with the final values of hour h for every metric, before revisions and
// the provisional discount. cuCap (0 = none) caps the compute size; off means computes could
// not run that hour.
func (s *Sim) baseHour(p *project, h int64, cuCap float64, off bool, out *[numMetrics]int64) {
	i, hh := uint64(p.idx), uint64(h)
	active, cu := s.compute(p, h, cuCap, off)
	util := s.utilization(p, h)
	age := float64(h*3600-p.created) / (30 * 86400)
	size := p.storage * (1 + float64(p.growth)*age) * (0.998 + 0.004*unit(s.rnd(i, hh, saltStorage)))
	child := 0.0
	if p.children > 0 {
		child = size * float64(p.childFrac)
	}
	restore := size * float64(p.restore)

	out[mComputeUnitSeconds] = int64(math.Round(active * cu))
	out[mRootBranchBytesMonth] = int64(size)
	out[mChildBranchBytesMonth] = int64(child)
	out[mInstantRestoreBytesMonth] = int64(restore)
	out[mPublicNetworkTransferBytes] = int64(active * float64(p.egress))
	out[mPrivateNetworkTransferBytes] = int64(active * float64(p.private))
	out[mExtraBranchesMonth] = int64(p.children)
	out[mSnapshotStorageBytesMonth] = int64(size * float64(p.snapshot))
	out[mActiveTimeSeconds] = int64(active)
	out[mComputeTimeSeconds] = int64(math.Round(active * cu * util))
	out[mWrittenDataBytes] = int64(active * float64(p.write))
	out[mSyntheticStorageSizeBytes] = int64(size + restore + child)
	out[mDataStorageBytesHour] = int64(size + restore + child)
	out[mLogicalSizeBytes] = int64(size * 0.85)
	out[mLogicalSizeBytesHour] = int64(size * 0.85)
}

// reportedHour fills out with what an hourly call made at now reports for hour h: zero for hours
// outside the history or not complete, otherwise the final value with the project's state,
// revisions and the provisional discount applied. It reports whether the hour is reportable.
func (s *Sim) reportedHour(p *project, v *view, revs []revision, h, now int64, out *[numMetrics]int64) bool {
	if h < s.histHour || (h+1)*3600 > now {
		*out = [numMetrics]int64{}
		return false
	}
	cuCap, off := v.at(h)
	s.baseHour(p, h, cuCap, off, out)
	for i := range revs {
		rv := &revs[i]
		if h < rv.from || h >= rv.to {
			continue
		}
		for m := metric(0); m < numMetrics; m++ {
			out[m] += s.revisionIncrement(p, rv, h, m, out[m])
		}
	}
	age := now - (h+1)*3600
	if age < provisionalAge {
		f := provisionalBase + age/provisionalStep
		for m := range out {
			out[m] = out[m] * f / 100
		}
	}
	return true
}

// Neon refreshes usage about every 15 minutes and may take up to an hour to settle; a bucket
// ending less than provisionalAge seconds ago is reported at (provisionalBase + steps) % of
// its value, steps counting 15-minute refreshes since its end.
const (
	provisionalAge  = 2 * 3600
	provisionalStep = 15 * 60
	provisionalBase = 92
)

// revision is one call to Revise: hours [from, to) of the metrics in mask were raised.
type revision struct {
	from, to int64 // unix hours
	id       uint64
	mask     uint16
}

// revisionIncrement is how much rv raises a value v (> 0) of metric m in hour h: 0.5–5 % plus one.
func (s *Sim) revisionIncrement(p *project, rv *revision, h int64, m metric, v int64) int64 {
	if v <= 0 || rv.mask&(1<<m) == 0 {
		return 0
	}
	r := s.rnd(uint64(p.idx), uint64(h), saltRev^rv.id<<8^uint64(m)<<1)
	return 1 + v*int64(5+r%46)/1000
}

// Revise changes the values of the last window complete hours before Now, for every project and
// about half of the metrics, as late-arriving data does in Neon. It returns how many reported
// (project, metric, hour) values changed.
func (s *Sim) Revise(window time.Duration) int {
	n := int64(window / time.Hour)
	if n <= 0 {
		return 0
	}
	now := s.nowSec()
	to := floorDiv(now, 3600)
	from := max(to-n, s.histHour)
	if from >= to {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := uint64(len(s.revisions) + 1)
	rv := revision{from: from, to: to, id: id}
	r := s.rnd(id, 0, saltRev)
	for m := metric(0); m < numMetrics; m++ {
		if (r>>m)&1 == 1 {
			rv.mask |= 1 << m
		}
	}
	rv.mask |= 1 << (r >> 32 % uint64(firstLegacy))                              // at least one v2 metric
	rv.mask |= 1 << (uint64(firstLegacy) + r>>40%uint64(numMetrics-firstLegacy)) // and one legacy metric

	changed := 0
	var before, after [numMetrics]int64
	withNew := append(s.revisions[:len(s.revisions):len(s.revisions)], rv)
	for i := range s.projects {
		p := &s.projects[i]
		v := s.viewLocked(p, from, to)
		lo, hi := metric(0), firstLegacy
		if p.org == orgLegacy {
			lo, hi = firstLegacy, numMetrics
		}
		for h := from; h < to; h++ {
			s.reportedHour(p, &v, s.revisions, h, now, &before)
			s.reportedHour(p, &v, withNew, h, now, &after)
			for m := lo; m < hi; m++ {
				if before[m] != after[m] {
					changed++
				}
			}
		}
	}
	s.revisions = append(s.revisions, rv)
	return changed
}

// period is one billing period of a project.
type period struct {
	start, end int64 // unix seconds, [start, end)
	plan       uint8
}

// periodAt returns the billing period containing instant t: the calendar month, split at the
// project's plan change if it falls in that month.
func (s *Sim) periodAt(p *project, t int64) period {
	ms := monthStart(t)
	me := addMonths(ms, 1)
	pr := period{start: ms, end: me, plan: p.planAfter}
	if p.planChange == 0 {
		return pr
	}
	switch {
	case p.planChange >= me:
		pr.plan = p.planBefore
	case p.planChange > ms:
		if t < p.planChange {
			pr.end, pr.plan = p.planChange, p.planBefore
		} else {
			pr.start = p.planChange
		}
	}
	return pr
}

// periodID is the deterministic UUID (version 4 layout) of a project's period.
func (s *Sim) periodID(p *project, start int64) (uint64, uint64) {
	return s.rnd(uint64(p.idx), uint64(start), saltPeriod), s.rnd(uint64(p.idx), uint64(start), saltPeriod+100)
}

func monthStart(t int64) int64 {
	y, m, _ := time.Unix(t, 0).UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Unix()
}

func addMonths(t int64, n int) int64 {
	y, m, d := time.Unix(t, 0).UTC().Date()
	return time.Date(y, m+time.Month(n), d, 0, 0, 0, 0, time.UTC).Unix()
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
