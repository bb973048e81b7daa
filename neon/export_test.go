package neon

import "runtime"

// DecodeConsumptionForTest runs the page decoder on body as if it answered q.
func DecodeConsumptionForTest(body []byte, q ConsumptionQuery, legacy bool) (*ConsumptionPage, error) {
	o, _, err := q.prepare(legacy)
	if err != nil {
		return nil, err
	}
	return decodeConsumption(body, o)
}

// AllocatedForTest returns the bytes allocated on the heap while f ran (runtime.MemStats.TotalAlloc),
// a bound on the memory f could hold at any moment.
func AllocatedForTest(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
