package billing

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPacer_AchievesTheConfiguredRate: several workers sharing the pacer send at the configured
// rate, never above it (burst one: n slots take at least (n−1)/rate) and not far below it.
// BenchmarkPush_Rate measures the same through a whole push (0.997 of 50/s, docs/benchmarks.md).
func TestPacer_AchievesTheConfiguredRate(t *testing.T) {
	const perSecond, n, workers = 200.0, 100, 4
	p := newPacer(perSecond)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / workers {
				if err := p.Wait(context.Background()); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if floor := time.Duration(float64(n-1) / perSecond * float64(time.Second)); elapsed < floor-time.Millisecond {
		t.Fatalf("%d slots in %v, faster than the rate allows (%v)", n, elapsed, floor)
	}
	if got := float64(n) / elapsed.Seconds() / perSecond; got < 0.9 {
		t.Fatalf("achieved %.3f of the configured rate, want at least 0.9", got)
	}
}

// TestPacer_PauseHoldsEveryWorker: after a 429's Pause, no worker's slot starts before the
// pause ends, whichever worker saw the 429; a shorter later pause does not shorten it.
func TestPacer_PauseHoldsEveryWorker(t *testing.T) {
	p := newPacer(1e6)
	const pause = 150 * time.Millisecond
	start := time.Now()
	p.Pause(pause)
	p.Pause(time.Millisecond)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Wait(context.Background()); err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
			if d := time.Since(start); d < pause {
				t.Errorf("worker %d started %v after the pause began, before its end (%v)", w, d, pause)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Pause(time.Hour)
	if err := p.Wait(ctx); err == nil {
		t.Fatal("Wait during a pause returned no error for an ended context")
	}
}

// TestPacer_ZeroRateDoesNotPace: no configured rate means no waiting.
func TestPacer_ZeroRateDoesNotPace(t *testing.T) {
	p := newPacer(0)
	start := time.Now()
	for range 1000 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 unpaced slots took %v", d)
	}
}
